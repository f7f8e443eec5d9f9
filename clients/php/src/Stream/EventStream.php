<?php

declare(strict_types=1);

namespace Toolgate\Stream;

use Toolgate\Exception\ProtocolException;
use Toolgate\Exception\TransportException;
use Toolgate\Internal\HeaderCollector;
use Toolgate\Internal\Response;

/**
 * The events of a streamed call or batch, read as they arrive (curl_multi and a
 * write callback), for `foreach`:
 *
 *     $stream = $client->stream('sleep', ['ms' => 300]);
 *     foreach ($stream as $event) { ... }   // ends after the DoneEvent
 *
 * A stream that ends without a `done` event throws a ProtocolException. Leaving the
 * loop early (or close()) closes the connection, which cancels the calls on the
 * server.
 */
final class EventStream implements \IteratorAggregate
{
    private const MAX_ERROR_BODY = 1 << 20;

    private ?\CurlMultiHandle $multi;
    private ?\CurlHandle $handle;
    private HeaderCollector $head;
    private SseParser $parser;
    /** @var list<array{event: string, data: string, id: ?string}> */
    private array $queue = [];
    private string $otherBody = '';
    private bool $transferDone = false;
    private int $curlResult = CURLE_OK;
    private bool $closed = false;

    /**
     * @internal use Client::stream() or Client::streamExecute()
     *
     * @param list<string> $headers
     */
    public function __construct(string $url, array $headers, string $body, int $connectTimeoutMs, int $idleTimeoutS)
    {
        $this->head = new HeaderCollector();
        $this->parser = new SseParser();
        $handle = curl_init();
        $multi = curl_multi_init();
        $this->handle = $handle;
        $this->multi = $multi;
        $ok = curl_setopt_array($handle, [
            CURLOPT_URL => $url,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_CONNECTTIMEOUT_MS => $connectTimeoutMs,
            // Heartbeats arrive every few seconds; nothing at all for this long is a dead stream.
            CURLOPT_LOW_SPEED_LIMIT => 1,
            CURLOPT_LOW_SPEED_TIME => $idleTimeoutS,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_HEADERFUNCTION => $this->head,
            CURLOPT_WRITEFUNCTION => function (\CurlHandle $ch, string $data): int {
                if ($this->isEventStream()) {
                    foreach ($this->parser->feed($data) as $event) {
                        $this->queue[] = $event;
                    }
                } elseif (strlen($this->otherBody) < self::MAX_ERROR_BODY) {
                    $this->otherBody .= $data;
                }

                return strlen($data);
            },
        ]);
        if (!$ok) {
            $this->close();
            throw new TransportException('could not set up the stream request');
        }
        $rc = curl_multi_add_handle($multi, $handle);
        if ($rc !== CURLM_OK) {
            $this->close();
            throw new TransportException('could not start the stream: ' . curl_multi_strerror($rc), $rc);
        }
        while (!$this->head->complete && !$this->transferDone) {
            $this->pump();
        }
        if (!$this->head->complete) {
            $result = $this->curlResult;
            $this->close();
            throw new TransportException('the stream request failed: ' . curl_strerror($result), $result);
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    /** The HTTP status of the answer. */
    public function status(): int
    {
        return $this->head->status;
    }

    /** The stream's trace id (the X-Trace-Id header). */
    public function traceId(): ?string
    {
        return $this->head->header('x-trace-id');
    }

    /**
     * @internal whether the server accepted the stream (200, text/event-stream)
     */
    public function isEventStream(): bool
    {
        return $this->head->status === 200 && Response::mediaTypeOf($this->head->header('content-type')) === 'text/event-stream';
    }

    /**
     * @internal reads a refused (non-event-stream) answer in full, and closes
     */
    public function readAnswer(): Response
    {
        while (!$this->transferDone) {
            $this->pump();
        }
        $result = $this->curlResult;
        $this->close();
        if ($result !== CURLE_OK) {
            throw new TransportException('reading the answer failed: ' . curl_strerror($result), $result);
        }

        return new Response($this->head->status, $this->head->reason, $this->head->headers, $this->otherBody);
    }

    /**
     * @return \Generator<int, Event>
     */
    public function getIterator(): \Generator
    {
        try {
            while (true) {
                while ($this->queue !== []) {
                    $event = SseParser::decode(array_shift($this->queue));
                    if ($event instanceof DoneEvent) {
                        $this->close();
                        yield $event;

                        return;
                    }
                    yield $event;
                }
                if ($this->closed) {
                    return;
                }
                if ($this->transferDone) {
                    $result = $this->curlResult;
                    $this->close();
                    if ($result !== CURLE_OK) {
                        throw new TransportException('the stream broke: ' . curl_strerror($result), $result);
                    }
                    throw new ProtocolException('the stream ended before its done event');
                }
                $this->pump();
            }
        } finally {
            // Leaving the loop early closes the connection: the server cancels the calls.
            $this->close();
        }
    }

    /**
     * Ends the stream; before its `done` event this cancels its calls on the server.
     */
    public function close(): void
    {
        if ($this->closed) {
            return;
        }
        $this->closed = true;
        $this->queue = [];
        if ($this->multi !== null && $this->handle !== null) {
            curl_multi_remove_handle($this->multi, $this->handle);
        }
        if ($this->multi !== null) {
            curl_multi_close($this->multi);
        }
        // Dropping the last reference frees the handle (curl_close is a no-op since PHP 8).
        $this->handle = null;
        $this->multi = null;
    }

    /** Lets curl make progress, waiting up to a second for the socket. */
    private function pump(): void
    {
        if ($this->multi === null) {
            $this->transferDone = true;

            return;
        }
        do {
            $rc = curl_multi_exec($this->multi, $running);
        } while ($rc === CURLM_CALL_MULTI_PERFORM);
        if ($rc !== CURLM_OK) {
            $this->close();
            throw new TransportException('the stream broke: ' . curl_multi_strerror($rc), $rc);
        }
        while (($info = curl_multi_info_read($this->multi)) !== false) {
            if ($info['msg'] === CURLMSG_DONE) {
                $this->transferDone = true;
                $this->curlResult = $info['result'];
            }
        }
        if (!$this->transferDone && $running > 0 && $this->queue === []) {
            if (curl_multi_select($this->multi, 1.0) === -1) {
                usleep(10000);
            }
        }
    }
}

<?php

declare(strict_types=1);

namespace Toolgate;

use Toolgate\Exception\ProtocolException;
use Toolgate\Exception\ToolgateException;
use Toolgate\Exception\TransportException;
use Toolgate\Exception\UsageException;
use Toolgate\Internal\HeaderCollector;
use Toolgate\Internal\Response;
use Toolgate\Stream\EventStream;

/**
 * A client for one toolgate server.
 *
 *     $tg = new Client('http://127.0.0.1:8080', getenv('TOOLGATE_API_KEY') ?: null);
 *     $result = $tg->call('echo', ['hello' => 'agents']);
 *
 * Every non-2xx answer throws a ToolgateException subclass (RateLimitedException,
 * TimeoutException, ...) carrying the contract's code, the status, the detail and the
 * trace id; a failed transfer throws a TransportException. JSON objects are decoded
 * as associative arrays. Pass `new \stdClass()` (or `[]` at the top level) for an
 * empty object.
 */
final class Client
{
    public const VERSION = '0.1.0';

    /** How much longer than a call's timeoutMs the client waits for the server's answer. */
    public const DEADLINE_GRACE_MS = 5000;

    private const OPTIONS = ['timeout', 'connect_timeout', 'stream_idle_timeout', 'retry', 'headers', 'user_agent'];
    private const MAX_ERROR_DETAIL = 512;

    private readonly string $prefix;
    /** @var array<string, string> */
    private readonly array $headers;
    private readonly ?RetryPolicy $retry;
    private readonly ?int $timeoutMs;
    private readonly int $connectTimeoutMs;
    private readonly int $streamIdleTimeoutS;
    private ?\CurlHandle $handle = null;

    /**
     * @param string      $baseUrl e.g. "http://127.0.0.1:8080" (a path prefix is kept, for servers behind a proxy)
     * @param string|null $apiKey  sent as X-Tool-API-Key; without one the server answers 401
     * @param array{
     *     timeout?: float|null,
     *     connect_timeout?: float,
     *     stream_idle_timeout?: int,
     *     retry?: RetryPolicy|null,
     *     headers?: array<string, string>,
     *     user_agent?: string,
     * } $options timeout: seconds for a whole non-streaming request (default none: the
     *   server enforces every call's deadline; lower it per call with $timeoutMs);
     *   connect_timeout: seconds (default 10); stream_idle_timeout: seconds a stream may
     *   stay silent, heartbeats included (default 60); retry: retries of refused
     *   requests (default none); headers: extra request headers
     */
    public function __construct(string $baseUrl, ?string $apiKey = null, array $options = [])
    {
        $unknown = array_diff(array_keys($options), self::OPTIONS);
        if ($unknown !== []) {
            throw new UsageException('unknown options: ' . implode(', ', $unknown));
        }
        $parts = parse_url($baseUrl);
        if ($parts === false || !in_array($parts['scheme'] ?? '', ['http', 'https'], true) || ($parts['host'] ?? '') === '') {
            throw new UsageException(sprintf('base URL "%s": want http(s)://host[:port][/prefix]', $baseUrl));
        }
        $host = str_contains($parts['host'], ':') && !str_starts_with($parts['host'], '[') ? '[' . $parts['host'] . ']' : $parts['host'];
        $this->prefix = $parts['scheme'] . '://' . $host . (isset($parts['port']) ? ':' . $parts['port'] : '') . rtrim($parts['path'] ?? '', '/');

        $headers = ['User-Agent' => $options['user_agent'] ?? 'toolgate-php/' . self::VERSION];
        foreach ($options['headers'] ?? [] as $name => $value) {
            $headers[$name] = $value;
        }
        if ($apiKey !== null && $apiKey !== '') {
            $headers['X-Tool-API-Key'] = $apiKey;
        }
        $this->headers = $headers;
        $this->retry = $options['retry'] ?? null;
        $timeout = $options['timeout'] ?? null;
        $this->timeoutMs = $timeout === null ? null : max(1, (int) ceil($timeout * 1000));
        $this->connectTimeoutMs = max(1, (int) ceil(($options['connect_timeout'] ?? 10.0) * 1000));
        $this->streamIdleTimeoutS = max(1, $options['stream_idle_timeout'] ?? 60);
    }

    /**
     * The tools this client's key may call.
     *
     * @return list<ToolInfo>
     */
    public function tools(): array
    {
        $doc = self::decode($this->send('GET', $this->url('tools')));
        if (!is_array($doc) || !is_array($doc['tools'] ?? null) || !array_is_list($doc['tools'])) {
            throw new ProtocolException('the tool list has no "tools" array');
        }

        return array_map(static fn (mixed $t): ToolInfo => ToolInfo::fromJson($t), $doc['tools']);
    }

    /** One tool's description. */
    public function tool(string $name): ToolInfo
    {
        return ToolInfo::fromJson(self::decode($this->send('GET', $this->url('tools', $name))));
    }

    /**
     * Runs one tool.
     *
     * @param array<mixed>|object $arguments a JSON object
     * @param int|null            $timeoutMs lowers the call's deadline on the server
     *                                       (X-Request-Timeout-Ms); past it, a TimeoutException
     */
    public function call(string $tool, array|object $arguments = [], ?int $timeoutMs = null): CallResult
    {
        self::checkTimeout($timeoutMs);
        $r = $this->send('POST', $this->url('tools', $tool), self::encodeArguments($arguments), $timeoutMs);

        return CallResult::fromJson(self::decode($r), $r->header('x-trace-id'));
    }

    /**
     * Runs calls concurrently as one batch ($timeoutMs is the whole batch's deadline).
     * A batch that ran is returned whatever its status: in fail_fast mode (the
     * default) a failure cancels the siblings still running, and $result->error /
     * $result->throwIfFailed() tell. A batch refused as a whole (no key, malformed, ...)
     * throws.
     *
     * @param list<BatchCall|array{tool: string, arguments?: array<mixed>|object, id?: string}> $calls
     */
    public function execute(array $calls, ?Mode $mode = null, ?int $timeoutMs = null): BatchResult
    {
        $body = self::batchBody($calls, $mode, $timeoutMs);
        $r = $this->send('POST', $this->url('tools', 'execute'), $body, null, true, $timeoutMs);

        return BatchResult::fromJson(self::decode($r), $r->status, $r->header('x-trace-id'));
    }

    /**
     * Runs one tool and streams its events (progress, result, error, done). A call
     * refused before it starts (no key, no scope, unknown tool, ...) throws here.
     *
     * @param array<mixed>|object $arguments
     */
    public function stream(string $tool, array|object $arguments = [], ?int $timeoutMs = null): EventStream
    {
        self::checkTimeout($timeoutMs);

        return $this->openStream($this->url('tools', $tool, 'stream'), self::encodeArguments($arguments), $timeoutMs);
    }

    /**
     * Runs a batch and streams its events: results in completion order.
     *
     * @param list<BatchCall|array{tool: string, arguments?: array<mixed>|object, id?: string}> $calls
     */
    public function streamExecute(array $calls, ?Mode $mode = null, ?int $timeoutMs = null): EventStream
    {
        return $this->openStream($this->url('tools', 'execute', 'stream'), self::batchBody($calls, $mode, $timeoutMs), null);
    }

    // === transport ===

    private function url(string ...$segments): string
    {
        return $this->prefix . '/api/v1/' . implode('/', array_map('rawurlencode', $segments));
    }

    /**
     * @return list<string>
     */
    private function requestHeaders(bool $stream, bool $body, ?int $timeoutMs): array
    {
        $h = $this->headers;
        $h['Accept'] = $stream ? 'text/event-stream' : 'application/json';
        if ($body) {
            $h['Content-Type'] = 'application/json';
        }
        if ($timeoutMs !== null) {
            $h['X-Request-Timeout-Ms'] = (string) $timeoutMs;
        }
        $h['Expect'] = ''; // no "100-continue" round trip for larger bodies
        $lines = [];
        foreach ($h as $name => $value) {
            $lines[] = $value === '' ? $name . ':' : $name . ': ' . $value;
        }

        return $lines;
    }

    /** The accepted answer (2xx, or a batch that ran), after any retries. */
    private function send(string $method, string $url, ?string $body = null, ?int $timeoutMs = null, bool $batch = false, ?int $readMs = null): Response
    {
        $headers = $this->requestHeaders(false, $body !== null, $timeoutMs);
        $limit = $this->timeoutMs;
        $deadline = $timeoutMs ?? $readMs;
        if ($deadline !== null) {
            $limit = min($limit ?? PHP_INT_MAX, $deadline + self::DEADLINE_GRACE_MS);
        }
        for ($attempt = 0; ; ++$attempt) {
            $r = $this->perform($method, $url, $headers, $body, $limit);
            if (($r->status >= 200 && $r->status < 300) || ($batch && $r->mediaType() === 'application/json')) {
                return $r;
            }
            $error = $this->errorFor($r);
            $wait = $this->retryWait($error, $attempt);
            if ($wait === null) {
                throw $error;
            }
            usleep((int) round($wait * 1e6));
        }
    }

    /**
     * @param list<string> $headers
     */
    private function perform(string $method, string $url, array $headers, ?string $body, ?int $timeoutMs): Response
    {
        $ch = $this->handle ??= curl_init();
        curl_reset($ch); // keeps the connection cache: connections are reused
        $head = new HeaderCollector();
        $opts = [
            CURLOPT_URL => $url,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_CONNECTTIMEOUT_MS => $this->connectTimeoutMs,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_HEADERFUNCTION => $head,
        ];
        if ($body !== null) {
            $opts[CURLOPT_POSTFIELDS] = $body;
        }
        if ($timeoutMs !== null) {
            $opts[CURLOPT_TIMEOUT_MS] = $timeoutMs;
        }
        if (!curl_setopt_array($ch, $opts)) {
            throw new TransportException('could not set up the request');
        }
        $out = curl_exec($ch);
        if (!is_string($out)) {
            throw new TransportException(sprintf('%s %s: %s', $method, $url, curl_error($ch)), curl_errno($ch));
        }

        return new Response($head->status, $head->reason, $head->headers, $out);
    }

    private function openStream(string $url, string $body, ?int $timeoutMs): EventStream
    {
        $headers = $this->requestHeaders(true, true, $timeoutMs);
        for ($attempt = 0; ; ++$attempt) {
            $stream = new EventStream($url, $headers, $body, $this->connectTimeoutMs, $this->streamIdleTimeoutS);
            if ($stream->isEventStream()) {
                return $stream;
            }
            $r = $stream->readAnswer();
            if ($r->status >= 200 && $r->status < 300) {
                throw new ProtocolException(sprintf('a stream answered as "%s", not text/event-stream', $r->header('content-type') ?? ''));
            }
            $error = $this->errorFor($r);
            $wait = $this->retryWait($error, $attempt);
            if ($wait === null) {
                throw $error;
            }
            usleep((int) round($wait * 1e6));
        }
    }

    /** The typed exception for a non-2xx answer. */
    private function errorFor(Response $r): ToolgateException
    {
        $traceId = $r->header('x-trace-id');
        $retryAfter = self::parseRetryAfter($r->header('retry-after'));
        if (in_array($r->mediaType(), ['application/problem+json', 'application/json'], true)) {
            $doc = json_decode($r->body, true);
            if (is_array($doc) && is_string($doc['code'] ?? null) && $doc['code'] !== '') {
                return ToolgateException::fromProblem($doc, $r->status, $traceId, $retryAfter);
            }
        }
        $detail = trim($r->body);
        if (strlen($detail) > self::MAX_ERROR_DETAIL) {
            $detail = substr($detail, 0, self::MAX_ERROR_DETAIL) . '...';
        }

        return new ToolgateException(status: $r->status, errorCode: '', title: $r->reason, detail: $detail, traceId: $traceId, retryAfter: $retryAfter);
    }

    /** Seconds to wait before sending again, or null to throw. */
    private function retryWait(ToolgateException $error, int $attempt): ?float
    {
        $policy = $this->retry;
        if ($policy === null || $attempt >= $policy->maxRetries || !$error->isRetryable() || $error->getErrorCode() === '') {
            return null;
        }
        $after = $error->getRetryAfter();
        if ($after !== null && $after > 0) {
            return $after <= $policy->maxWait ? $after : null;
        }
        $backoff = min($policy->maxWait, 0.5 * 2 ** $attempt);

        return $backoff / 2 + $backoff / 2 * mt_rand() / mt_getrandmax();
    }

    /**
     * Seconds from a Retry-After header: delay-seconds or an HTTP-date.
     *
     * @internal
     */
    public static function parseRetryAfter(?string $value, ?int $now = null): ?float
    {
        if ($value === null) {
            return null;
        }
        $value = trim($value);
        if ($value !== '' && ctype_digit($value)) {
            return (float) min((int) $value, 86400);
        }
        $when = \DateTimeImmutable::createFromFormat('D, d M Y H:i:s \G\M\T', $value, new \DateTimeZone('UTC'));
        if ($when === false) {
            return null;
        }

        return (float) max(0, $when->getTimestamp() - ($now ?? time()));
    }

    private static function checkTimeout(?int $timeoutMs): void
    {
        if ($timeoutMs !== null && $timeoutMs <= 0) {
            throw new UsageException(sprintf('timeoutMs must be positive, not %d', $timeoutMs));
        }
    }

    /**
     * @param array<mixed>|object $arguments
     */
    private static function encodeArguments(array|object $arguments): string
    {
        return self::encode($arguments === [] ? new \stdClass() : $arguments);
    }

    /**
     * @param list<BatchCall|array{tool: string, arguments?: array<mixed>|object, id?: string}> $calls
     */
    private static function batchBody(array $calls, ?Mode $mode, ?int $timeoutMs): string
    {
        self::checkTimeout($timeoutMs);
        $list = [];
        foreach ($calls as $i => $call) {
            if (is_array($call)) {
                if (!is_string($call['tool'] ?? null)) {
                    throw new UsageException(sprintf('call %s has no tool', (string) $i));
                }
                $call = new BatchCall($call['tool'], $call['arguments'] ?? null, $call['id'] ?? null);
            }
            if (!$call instanceof BatchCall) {
                throw new UsageException(sprintf('call %s is neither a BatchCall nor an array', (string) $i));
            }
            $list[] = $call->toJson();
        }
        $body = ['calls' => $list];
        if ($mode !== null) {
            $body['mode'] = $mode->value;
        }
        if ($timeoutMs !== null) {
            $body['timeout_ms'] = $timeoutMs;
        }

        return self::encode($body);
    }

    private static function encode(mixed $value): string
    {
        try {
            return json_encode($value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
        } catch (\JsonException $e) {
            throw new UsageException('the arguments do not encode as JSON: ' . $e->getMessage(), 0, $e);
        }
    }

    private static function decode(Response $r): mixed
    {
        try {
            return json_decode($r->body, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        } catch (\JsonException $e) {
            throw new ProtocolException(sprintf('a %d answer that is not JSON: %s', $r->status, substr($r->body, 0, 200)), 0, $e);
        }
    }
}

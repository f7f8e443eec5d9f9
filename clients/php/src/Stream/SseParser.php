<?php

declare(strict_types=1);

namespace Toolgate\Stream;

use Toolgate\BatchEntry;
use Toolgate\Exception\ProtocolException;
use Toolgate\Exception\ToolgateException;

/**
 * An incremental text/event-stream parser, as the HTML standard defines it. Feed it
 * bytes as they arrive; it returns the events they complete.
 *
 * Lines end in CRLF, LF or CR (also across chunk boundaries); a line starting with
 * ":" is a comment (heartbeat); "field: value" drops one space after the colon; data
 * lines are joined with "\n"; a blank line dispatches the event (nothing when no data
 * arrived); the id persists across events; an unfinished event at the end of the
 * stream is dropped.
 */
final class SseParser
{
    private string $line = '';
    private bool $afterCr = false;
    private bool $started = false;
    private string $event = '';
    /** @var list<string> */
    private array $data = [];
    private ?string $lastId = null;

    /**
     * @return list<array{event: string, data: string, id: ?string}>
     */
    public function feed(string $chunk): array
    {
        $events = [];
        $i = 0;
        $n = strlen($chunk);
        while (true) {
            if ($this->afterCr && $i < $n) {
                // A LF right after a CR belongs to the same line terminator.
                $this->afterCr = false;
                if ($chunk[$i] === "\n") {
                    ++$i;
                }
            }
            $j = $i < $n ? strcspn($chunk, "\r\n", $i) + $i : $n;
            if ($j >= $n) {
                break;
            }
            $line = $this->line . substr($chunk, $i, $j - $i);
            $this->line = '';
            $this->afterCr = $chunk[$j] === "\r";
            $event = $this->process($line);
            if ($event !== null) {
                $events[] = $event;
            }
            $i = $j + 1;
        }
        if ($i < $n) {
            $this->line .= substr($chunk, $i);
        }

        return $events;
    }

    /**
     * @return array{event: string, data: string, id: ?string}|null
     */
    private function process(string $line): ?array
    {
        if (!$this->started) {
            $this->started = true;
            if (str_starts_with($line, "\u{FEFF}")) {
                $line = substr($line, 3);
            }
        }
        if ($line === '') {
            if ($this->data === []) {
                $this->event = '';

                return null;
            }
            $event = ['event' => $this->event !== '' ? $this->event : 'message', 'data' => implode("\n", $this->data), 'id' => $this->lastId];
            $this->event = '';
            $this->data = [];

            return $event;
        }
        if ($line[0] === ':') {
            return null;
        }
        $colon = strpos($line, ':');
        if ($colon === false) {
            $field = $line;
            $value = '';
        } else {
            $field = substr($line, 0, $colon);
            $value = substr($line, $colon + 1);
            if (str_starts_with($value, ' ')) {
                $value = substr($value, 1);
            }
        }
        switch ($field) {
            case 'event':
                $this->event = $value;
                break;
            case 'data':
                $this->data[] = $value;
                break;
            case 'id':
                if (!str_contains($value, "\0")) {
                    $this->lastId = $value;
                }
                break;
        }

        return null;
    }

    /**
     * The typed event for a raw one.
     *
     * @param array{event: string, data: string, id: ?string} $raw
     */
    public static function decode(array $raw): Event
    {
        $type = $raw['event'];
        if (!in_array($type, ['progress', 'result', 'error', 'done'], true)) {
            return new UnknownEvent($type, $raw['data'], $raw['id']);
        }
        try {
            $d = json_decode($raw['data'], true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new ProtocolException(sprintf('a "%s" event whose data is not JSON: %s', $type, $e->getMessage()), 0, $e);
        }
        if (!is_array($d)) {
            throw new ProtocolException(sprintf('a "%s" event whose data is not an object', $type));
        }
        switch ($type) {
            case 'progress':
                if (!is_string($d['id'] ?? null) || !is_string($d['tool'] ?? null) || !self::isNumber($d['progress'] ?? null)) {
                    throw new ProtocolException('a progress event without id, tool or progress');
                }

                return new ProgressEvent(
                    $d['id'],
                    $d['tool'],
                    (float) $d['progress'],
                    self::isNumber($d['total'] ?? null) ? (float) $d['total'] : null,
                    is_string($d['message'] ?? null) ? $d['message'] : null,
                    $raw['id'],
                );
            case 'result':
                return new ResultEvent(BatchEntry::fromJson($d), $raw['id']);
            case 'error':
                if (!is_array($d['error'] ?? null)) {
                    throw new ProtocolException('an error event without an error');
                }

                return new ErrorEvent(ToolgateException::fromProblem($d['error']), is_string($d['id'] ?? null) ? $d['id'] : null, $raw['id']);
            default:
                foreach (['calls', 'succeeded', 'failed'] as $k) {
                    if (!is_int($d[$k] ?? null)) {
                        throw new ProtocolException("a done event without $k");
                    }
                }
                if (!is_bool($d['success'] ?? null)) {
                    throw new ProtocolException('a done event without success');
                }

                return new DoneEvent($d['success'], $d['calls'], $d['succeeded'], $d['failed'], $raw['id']);
        }
    }

    private static function isNumber(mixed $v): bool
    {
        return is_int($v) || is_float($v);
    }
}

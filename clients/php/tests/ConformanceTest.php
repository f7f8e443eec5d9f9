<?php

declare(strict_types=1);

namespace Toolgate\Tests;

use PHPUnit\Framework\TestCase;
use Toolgate\BatchCall;
use Toolgate\BatchEntry;
use Toolgate\BatchResult;
use Toolgate\CallResult;
use Toolgate\Client;
use Toolgate\Exception;
use Toolgate\Exception\ToolgateException;
use Toolgate\Mode;
use Toolgate\RetryPolicy;
use Toolgate\Stream\DoneEvent;
use Toolgate\Stream\ErrorEvent;
use Toolgate\Stream\Event;
use Toolgate\Stream\ProgressEvent;
use Toolgate\Stream\ResultEvent;
use Toolgate\ToolInfo;

/**
 * Every case of clients/conformance.json, against a real toolgate.
 */
final class ConformanceTest extends TestCase
{
    /** The exception class each code must throw (written out, not taken from the library). */
    private const CLASS_FOR_CODE = [
        'invalid_json' => Exception\InvalidJsonException::class,
        'invalid_arguments' => Exception\InvalidArgumentsException::class,
        'unauthorized' => Exception\UnauthorizedException::class,
        'forbidden' => Exception\ForbiddenException::class,
        'tool_not_found' => Exception\ToolNotFoundException::class,
        'payload_too_large' => Exception\PayloadTooLargeException::class,
        'rate_limited' => Exception\RateLimitedException::class,
        'overloaded' => Exception\OverloadedException::class,
        'timeout' => Exception\TimeoutException::class,
        'circuit_open' => Exception\CircuitOpenException::class,
        'upstream_error' => Exception\UpstreamException::class,
        'tool_error' => Exception\ToolErrorException::class,
        'cancelled' => Exception\CancelledException::class,
    ];

    private static ?TestServer $server = null;

    /** @var array<string, mixed>|null the file, objects as arrays (expectations) */
    private static ?array $suite = null;

    /** @var object|null the file, objects as \stdClass (arguments keep {} apart from []) */
    private static ?object $suiteObjects = null;

    /** @return array<string, mixed> */
    private static function conformance(): array
    {
        if (self::$suite === null) {
            $text = file_get_contents(dirname(__DIR__, 2) . '/conformance.json');
            self::assertIsString($text);
            self::$suite = json_decode($text, true, 512, JSON_THROW_ON_ERROR);
            self::$suiteObjects = json_decode($text, false, 512, JSON_THROW_ON_ERROR);
        }

        return self::$suite;
    }

    public static function setUpBeforeClass(): void
    {
        self::$server = new TestServer(self::conformance()['keys']['operator']);
    }

    public static function tearDownAfterClass(): void
    {
        if (self::$server !== null) {
            $tail = self::$server->tail();
            $code = self::$server->stop();
            self::$server = null;
            self::assertSame(0, $code, "toolgate exited with $code:\n$tail");
        }
    }

    /**
     * @return iterable<string, array{int}>
     */
    public function cases(): iterable
    {
        foreach (self::conformance()['cases'] as $i => $case) {
            yield $case['name'] => [$i];
        }
    }

    /**
     * @dataProvider cases
     */
    public function testCase(int $index): void
    {
        $case = self::conformance()['cases'][$index];
        $objects = self::$suiteObjects->cases[$index];
        $background = null;
        if (isset($case['background'])) {
            $bg = $case['background'];
            $background = new Background($this->baseUrl(), $this->key($bg['request']['key']), $bg['request'], $objects->background->request, $bg['count']);
            $background->run($bg['wait_ms'] / 1000);
        }
        try {
            foreach ($case['steps'] as $j => $step) {
                $outcome = $this->perform($step['request'], $objects->steps[$j]->request);
                if (isset($step['expect'])) {
                    $this->check("step $j", $step['expect'], $outcome);
                }
            }
        } finally {
            $background?->finish();
        }
    }

    private function baseUrl(): string
    {
        self::assertNotNull(self::$server);

        return self::$server->baseUrl;
    }

    private function key(string $name): ?string
    {
        $keys = self::conformance()['keys'];
        self::assertArrayHasKey($name, $keys);

        return $keys[$name];
    }

    /**
     * @param array<string, mixed> $req
     *
     * @return array{value: mixed, events: list<mixed>, error: ?\Throwable, elapsed: float}
     */
    private function perform(array $req, object $reqObjects): array
    {
        $options = [];
        if (isset($req['retry'])) {
            $options['retry'] = new RetryPolicy($req['retry']['max_retries'], $req['retry']['max_wait_ms'] / 1000);
        }
        $client = new Client($this->baseUrl(), $this->key($req['key']), $options);
        $timeoutMs = $req['timeout_ms'] ?? null;
        $mode = isset($req['mode']) ? Mode::from($req['mode']) : null;
        $out = ['value' => null, 'events' => [], 'error' => null, 'elapsed' => 0.0];
        $start = hrtime(true);
        try {
            switch ($req['op']) {
                case 'tools':
                    $out['value'] = array_map(static fn (ToolInfo $t): string => $t->name, $client->tools());
                    break;
                case 'tool':
                    $out['value'] = self::toolJson($client->tool($req['tool']));
                    break;
                case 'call':
                    $out['value'] = self::callJson($client->call($req['tool'], self::arguments($req, $reqObjects), $timeoutMs));
                    break;
                case 'execute':
                    $out['value'] = self::batchJson($client->execute(self::calls($reqObjects), $mode, $timeoutMs));
                    break;
                case 'stream':
                case 'stream_execute':
                    $stream = $req['op'] === 'stream'
                        ? $client->stream($req['tool'], self::arguments($req, $reqObjects), $timeoutMs)
                        : $client->streamExecute(self::calls($reqObjects), $mode, $timeoutMs);
                    self::assertNotEmpty($stream->traceId());
                    $closeAfter = $req['close_after_events'] ?? 0;
                    foreach ($stream as $event) {
                        $out['events'][] = self::eventJson($event);
                        if ($closeAfter > 0 && count($out['events']) >= $closeAfter) {
                            break;
                        }
                    }
                    $stream->close();
                    break;
                default:
                    self::fail('unknown op ' . $req['op']);
            }
        } catch (ToolgateException $e) {
            $out['error'] = $e;
        }
        $out['elapsed'] = (hrtime(true) - $start) / 1e9;

        return $out;
    }

    /**
     * @param array<string, mixed> $req
     *
     * @return array<mixed>|object
     */
    private static function arguments(array $req, object $reqObjects): array|object
    {
        $args = $reqObjects->args ?? new \stdClass();
        if (isset($req['pad'])) {
            $args = clone $args;
            $args->{$req['pad']['field']} = str_repeat('x', $req['pad']['bytes']);
        }

        return $args;
    }

    /**
     * @return list<BatchCall>
     */
    private static function calls(object $reqObjects): array
    {
        return array_map(
            static fn (object $c): BatchCall => new BatchCall($c->tool, $c->args ?? null, $c->id ?? null),
            $reqObjects->calls,
        );
    }

    // === typed values back to JSON, to match against the expectations ===

    /** @return array<string, mixed> */
    private static function problem(ToolgateException $e): array
    {
        self::assertSame(self::CLASS_FOR_CODE[$e->getErrorCode()] ?? ToolgateException::class, $e::class);

        return $e->toProblem();
    }

    /** @return array<string, mixed> */
    private static function toolJson(ToolInfo $t): array
    {
        $out = [
            'name' => $t->name,
            'description' => $t->description,
            'input_schema' => $t->inputSchema,
            'annotations' => ['read_only' => $t->readOnly, 'idempotent' => $t->idempotent, 'destructive' => $t->destructive],
            'timeout_ms' => $t->timeoutMs,
        ];
        if ($t->outputSchema !== null) {
            $out['output_schema'] = $t->outputSchema;
        }

        return $out;
    }

    /** @return array<string, mixed> */
    private static function callJson(CallResult $r): array
    {
        return ['tool' => $r->tool, 'output' => $r->output, 'duration_ms' => $r->durationMs, 'trace_id' => $r->traceId];
    }

    /** @return array<string, mixed> */
    private static function entryJson(BatchEntry $e): array
    {
        $out = ['id' => $e->id, 'tool' => $e->tool, 'ok' => $e->ok, 'duration_ms' => $e->durationMs];
        if ($e->ok) {
            $out['output'] = $e->output;
        }
        if ($e->error !== null) {
            $out['error'] = self::problem($e->error);
        }

        return $out;
    }

    /** @return array<string, mixed> */
    private static function batchJson(BatchResult $b): array
    {
        $out = [
            'status' => $b->status,
            'success' => $b->success,
            'data' => array_map(static fn (BatchEntry $e): array => self::entryJson($e), $b->data),
            'trace_id' => $b->traceId,
        ];
        if ($b->error !== null) {
            $out['error'] = self::problem($b->error);
        }

        return $out;
    }

    /** @return array{event: string, data: array<string, mixed>} */
    private static function eventJson(Event $ev): array
    {
        self::assertNotEmpty($ev->eventId(), 'an event without an id');
        if ($ev instanceof ProgressEvent) {
            $data = ['id' => $ev->id, 'tool' => $ev->tool, 'progress' => $ev->progress];
            if ($ev->total !== null) {
                $data['total'] = $ev->total;
            }
            if ($ev->message !== null) {
                $data['message'] = $ev->message;
            }
        } elseif ($ev instanceof ResultEvent) {
            $data = self::entryJson($ev->entry);
        } elseif ($ev instanceof ErrorEvent) {
            $data = ['error' => self::problem($ev->error)];
            if ($ev->id !== null) {
                $data['id'] = $ev->id;
            }
        } elseif ($ev instanceof DoneEvent) {
            $data = ['success' => $ev->success, 'calls' => $ev->calls, 'succeeded' => $ev->succeeded, 'failed' => $ev->failed];
        } else {
            self::fail('an unexpected event: ' . $ev->type());
        }

        return ['event' => $ev->type(), 'data' => $data];
    }

    // === checking ===

    /**
     * @param array<string, mixed> $want
     * @param array{value: mixed, events: list<mixed>, error: ?\Throwable, elapsed: float} $got
     */
    private function check(string $where, array $want, array $got): void
    {
        if (isset($want['min_elapsed_ms'])) {
            self::assertGreaterThanOrEqual($want['min_elapsed_ms'], $got['elapsed'] * 1000, "$where: too fast");
        }
        if (isset($want['max_elapsed_ms'])) {
            self::assertLessThanOrEqual($want['max_elapsed_ms'], $got['elapsed'] * 1000, "$where: too slow");
        }
        if (isset($want['error'])) {
            $this->checkError($where, $want['error'], $got['error']);

            return;
        }
        self::assertNull($got['error'], "$where: unexpected error " . ($got['error']?->getMessage() ?? ''));
        $problems = [];
        if (isset($want['tools'])) {
            $names = $got['value'];
            foreach ($want['tools']['include'] ?? [] as $n) {
                if (!in_array($n, $names, true)) {
                    $problems[] = "tool $n is not listed in " . json_encode($names);
                }
            }
            if (isset($want['tools']['exactly'])) {
                $a = $names;
                $b = $want['tools']['exactly'];
                sort($a);
                sort($b);
                if ($a !== $b) {
                    $problems[] = 'tools ' . json_encode($names) . ', expected exactly ' . json_encode($b);
                }
            }
        }
        foreach (['tool', 'result', 'batch'] as $key) {
            if (array_key_exists($key, $want)) {
                self::match($want[$key], $got['value'], $key, $problems);
            }
        }
        if (isset($want['events'])) {
            $problems = array_merge($problems, self::matchEvents($want['events'], $got['events']));
        }
        self::assertSame([], $problems, "$where:\n" . implode("\n", $problems));
    }

    /**
     * @param array<string, mixed> $want
     */
    private function checkError(string $where, array $want, ?\Throwable $e): void
    {
        self::assertNotNull($e, "$where: expected a {$want['status']} {$want['code']} error, got success");
        self::assertInstanceOf(ToolgateException::class, $e);
        self::assertInstanceOf(self::CLASS_FOR_CODE[$want['code']], $e, "$where: " . $e::class);
        self::assertSame([$want['status'], $want['code']], [$e->getStatus(), $e->getErrorCode()], "$where: " . $e->getMessage());
        self::assertSame($want['status'], $e->getCode());
        self::assertNotEmpty($e->getTraceId(), "$where: no trace id");
        self::assertNotSame('', $e->getDetail(), "$where: no detail");
        self::assertNotSame('', $e->getTitle(), "$where: no title");
        self::assertNotSame('', $e->getType(), "$where: no type");
        if (array_key_exists('tool', $want)) {
            self::assertSame($want['tool'], $e->getTool(), "$where: tool");
        }
        if (array_key_exists('detail', $want)) {
            self::assertSame($want['detail'], $e->getDetail(), "$where: detail");
        }
        if (array_key_exists('pointers', $want)) {
            self::assertSame($want['pointers'], array_map(static fn (Exception\FieldError $f): string => $f->pointer, $e->getErrors()), "$where: pointers");
            foreach ($e->getErrors() as $f) {
                self::assertNotSame('', $f->message);
            }
        }
        if ($want['retry_after'] ?? false) {
            self::assertGreaterThan(0, $e->getRetryAfter() ?? 0, "$where: no Retry-After");
            self::assertInstanceOf(Exception\RetryableException::class, $e);
        }
        self::assertStringContainsString($want['code'], $e->getMessage());
    }

    /**
     * @param list<array<string, mixed>> $patterns
     * @param list<mixed>                $events
     *
     * @return list<string>
     */
    private static function matchEvents(array $patterns, array $events): array
    {
        $i = 0;
        foreach ($patterns as $n => $p) {
            $lo = $p['min'] ?? 1;
            $hi = array_key_exists('max', $p) ? $p['max'] : 1; // null: unbounded
            $count = 0;
            while ($i < count($events) && ($hi === null || $count < $hi) && self::eventMatches($p, $events[$i])) {
                ++$count;
                ++$i;
            }
            if ($count < $lo) {
                return ["pattern $n ({$p['event']}): $count matching events, expected at least $lo; events: " . json_encode($events)];
            }
        }
        if ($i !== count($events)) {
            return [(count($events) - $i) . ' unexpected events after the patterns; events: ' . json_encode($events)];
        }

        return [];
    }

    /**
     * @param array<string, mixed> $p
     * @param array<string, mixed> $ev
     */
    private static function eventMatches(array $p, array $ev): bool
    {
        if ($ev['event'] !== $p['event']) {
            return false;
        }
        $problems = [];
        if (array_key_exists('match', $p)) {
            self::match($p['match'], $ev['data'], 'data', $problems);
        }

        return $problems === [];
    }

    /**
     * Objects by their expected keys, lists element by element, "<any>" for any present
     * value, other values by equality (numbers as numbers, never as booleans).
     *
     * @param list<string> $problems
     */
    private static function match(mixed $want, mixed $got, string $path, array &$problems): void
    {
        if ($want === '<any>') {
            return;
        }
        if (is_array($want)) {
            if (!is_array($got)) {
                $problems[] = "$path: expected " . json_encode($want) . ', got ' . json_encode($got);

                return;
            }
            if (array_is_list($want)) {
                if (!array_is_list($got) || count($got) !== count($want)) {
                    $problems[] = "$path: expected " . json_encode($want) . ', got ' . json_encode($got);

                    return;
                }
                foreach ($want as $i => $w) {
                    self::match($w, $got[$i], "{$path}[$i]", $problems);
                }

                return;
            }
            foreach ($want as $k => $w) {
                if (!array_key_exists($k, $got)) {
                    $problems[] = "$path.$k: missing in " . json_encode($got);
                } else {
                    self::match($w, $got[$k], "$path.$k", $problems);
                }
            }

            return;
        }
        $numbers = (is_int($want) || is_float($want)) && (is_int($got) || is_float($got));
        if ($numbers ? $want != $got : $want !== $got) {
            $problems[] = "$path: expected " . json_encode($want) . ', got ' . json_encode($got);
        }
    }
}

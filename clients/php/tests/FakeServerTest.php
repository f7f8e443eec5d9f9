<?php

declare(strict_types=1);

namespace Toolgate\Tests;

use PHPUnit\Framework\TestCase;
use Toolgate\BatchCall;
use Toolgate\Client;
use Toolgate\Exception\NotFoundException;
use Toolgate\Exception\OverloadedException;
use Toolgate\Exception\ProtocolException;
use Toolgate\Exception\RateLimitedException;
use Toolgate\Exception\ToolgateException;
use Toolgate\Exception\TransportException;
use Toolgate\Exception\UpstreamException;
use Toolgate\Exception\UsageException;
use Toolgate\Mode;
use Toolgate\RetryPolicy;
use Toolgate\Stream\Event;

/**
 * Behaviour the real server cannot be made to show on demand, against a fake
 * (tests/fake/router.php under `php -S`).
 */
final class FakeServerTest extends TestCase
{
    /** @var resource|null */
    private static $process = null;
    private static string $base = '';
    private static string $run = '';
    /** Keeps each test's hit counters apart. */
    private string $testId = '';

    protected function setUp(): void
    {
        $this->testId = bin2hex(random_bytes(4));
    }

    public static function setUpBeforeClass(): void
    {
        $probe = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        self::assertIsResource($probe, $errstr);
        $addr = stream_socket_get_name($probe, false);
        fclose($probe);
        self::assertIsString($addr);
        $process = proc_open(
            [PHP_BINARY, '-S', $addr, __DIR__ . '/fake/router.php'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']],
            $pipes,
        );
        self::assertIsResource($process);
        self::$process = $process;
        self::$base = 'http://' . $addr;
        self::$run = bin2hex(random_bytes(6));
        for ($i = 0; $i < 100; ++$i) {
            $s = @stream_socket_client('tcp://' . $addr, $errno, $errstr, 0.1);
            if (is_resource($s)) {
                fclose($s);

                return;
            }
            usleep(50_000);
        }
        self::fail('php -S did not start');
    }

    public static function tearDownAfterClass(): void
    {
        if (self::$process !== null) {
            proc_terminate(self::$process);
            proc_close(self::$process);
            self::$process = null;
        }
        foreach (glob(sys_get_temp_dir() . '/toolgate-fake-' . self::$run . '*') ?: [] as $f) {
            unlink($f);
        }
    }

    /**
     * @param array<string, mixed> $options
     */
    private function client(string $scenario, array $options = [], ?string $key = null): Client
    {
        $options['headers'] = ['X-Fake-Run' => self::$run . $this->testId];

        return new Client(self::$base . '/' . $scenario . '/', $key, $options);
    }

    private function hits(string $scenario): int
    {
        return (int) file_get_contents(sys_get_temp_dir() . '/toolgate-fake-' . preg_replace('/[^a-z0-9]/', '', self::$run . $this->testId) . '-' . $scenario);
    }

    public function testUpstreamErrorIsDecoded(): void
    {
        try {
            $this->client('upstream')->call('inventory');
            self::fail('no exception');
        } catch (UpstreamException $e) {
            self::assertSame([502, 'upstream_error', 'inventory', 'abc', 'inventory failed'], [$e->getStatus(), $e->getErrorCode(), $e->getTool(), $e->getTraceId(), $e->getDetail()]);
        }
    }

    public function testAnAnswerThatIsNoProblemIsAnErrorWithTheStatus(): void
    {
        try {
            $this->client('html')->tools();
            self::fail('no exception');
        } catch (ToolgateException $e) {
            self::assertSame(ToolgateException::class, $e::class);
            self::assertSame([502, '', '<html>bad gateway</html>', 't1'], [$e->getStatus(), $e->getErrorCode(), $e->getDetail(), $e->getTraceId()]);
        }
    }

    public function testRouteNotFound(): void
    {
        $this->expectException(NotFoundException::class);
        $this->client('nowhere')->tools();
    }

    public function testRetriesHonourRetryAfterAndStop(): void
    {
        $r = $this->client('retry', ['retry' => new RetryPolicy(2, 1.0)])->call('echo');
        self::assertSame(['hits' => 3], $r->output);
        self::assertSame(3, $this->hits('retry'));
    }

    public function testRetriesAreOffByDefault(): void
    {
        $this->expectException(OverloadedException::class);
        try {
            $this->client('retry')->call('echo');
        } finally {
            self::assertSame(1, $this->hits('retry'));
        }
    }

    public function testARetryAfterPastTheBoundIsNotWaitedFor(): void
    {
        $start = microtime(true);
        try {
            $this->client('rate', ['retry' => new RetryPolicy(5, 1.0)])->call('echo');
            self::fail('no exception');
        } catch (RateLimitedException $e) {
            self::assertSame(60.0, $e->getRetryAfter());
        }
        self::assertSame(1, $this->hits('rate'));
        self::assertLessThan(1.0, microtime(true) - $start);
    }

    public function testABatchThatRanIsNeverRetried(): void
    {
        $res = $this->client('batch429', ['retry' => new RetryPolicy(3)])->execute([new BatchCall('t')]);
        self::assertSame(1, $this->hits('batch429'));
        self::assertSame(429, $res->status);
        self::assertFalse($res->success);
        self::assertInstanceOf(OverloadedException::class, $res->error);
        self::assertInstanceOf(OverloadedException::class, $res->data[0]->error);
        $this->expectException(OverloadedException::class);
        $res->throwIfFailed();
    }

    public function testRequestShape(): void
    {
        $r = $this->client('echo', [], 'k')->call('a b', [], 1500);
        $seen = $r->output;
        self::assertSame('POST', $seen['method']);
        self::assertSame('/echo/api/v1/tools/a%20b', $seen['path']);
        self::assertSame('k', $seen['headers']['x-tool-api-key']);
        self::assertSame('1500', $seen['headers']['x-request-timeout-ms']);
        self::assertSame('application/json', $seen['headers']['content-type']);
        self::assertSame('{}', $seen['body']);
        self::assertSame(['trace', 3], [$r->traceId, $r->durationMs]);

        $r = $this->client('echobatch')->execute([['tool' => 'echo', 'arguments' => ['x' => 1.0]], new BatchCall('sleep', ['ms' => 1], 'b'), new BatchCall('echo', [])], Mode::AllSettled, 7);
        self::assertSame([200, true, 'trace'], [$r->status, $r->success, $r->traceId]);
        self::assertSame(
            '{"calls":[{"tool":"echo","arguments":{"x":1.0}},{"tool":"sleep","id":"b","arguments":{"ms":1}},{"tool":"echo","arguments":{}}],"mode":"all_settled","timeout_ms":7}',
            $r->data[0]->output['body'],
        );

        $r = $this->client('echo')->call('echo', ['nested' => new \stdClass(), 'list' => [], 'f' => 1.0, 'u' => 'grüße/✓']);
        self::assertSame('{"nested":{},"list":[],"f":1.0,"u":"grüße/✓"}', $r->output['body']);
        self::assertArrayNotHasKey('x-tool-api-key', $r->output['headers']);
    }

    public function testUsageErrors(): void
    {
        foreach ([fn () => new Client('localhost:8080'), fn () => new Client('http://x', null, ['nope' => 1]),
            fn () => $this->client('echo')->call('echo', [], 0), fn () => $this->client('echo')->call('echo', ['x' => NAN])] as $f) {
            try {
                $f();
                self::fail('no exception');
            } catch (UsageException) {
                self::addToAssertionCount(1);
            }
        }
    }

    public function testAStreamWithoutDoneThrows(): void
    {
        $types = [];
        try {
            foreach ($this->client('nodone')->stream('t') as $event) {
                $types[] = $event->type();
            }
            self::fail('no exception');
        } catch (ProtocolException) {
            self::assertSame(['progress'], $types);
        }
    }

    public function testAStreamStopsAtDoneAndSkipsUnknownLineEndings(): void
    {
        $types = array_map(static fn (Event $e): string => $e->type(), iterator_to_array($this->client('events')->stream('fail'), false));
        self::assertSame(['result', 'unknown', 'done'], $types);
    }

    public function testAStreamThatIsNotEventStreamThrows(): void
    {
        $this->expectException(ProtocolException::class);
        $this->client('notsse')->stream('t');
    }

    public function testARefusedStreamThrowsTheProblem(): void
    {
        try {
            $this->client('rate')->stream('t');
            self::fail('no exception');
        } catch (RateLimitedException $e) {
            self::assertSame(60.0, $e->getRetryAfter());
        }
    }

    public function testConnectionRefusedIsATransportException(): void
    {
        $probe = stream_socket_server('tcp://127.0.0.1:0');
        self::assertIsResource($probe);
        $addr = stream_socket_get_name($probe, false);
        fclose($probe);
        $this->expectException(TransportException::class);
        (new Client('http://' . $addr))->tools();
    }
}

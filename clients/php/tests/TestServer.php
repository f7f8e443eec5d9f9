<?php

declare(strict_types=1);

namespace Toolgate\Tests;

/**
 * A real toolgate, started with clients/testserver.sh. Its log goes to a file (so no
 * pipe can fill up); the bound address comes from the "listening" line.
 */
final class TestServer
{
    /** @var resource */
    private $process;
    private string $dir;
    public readonly string $baseUrl;

    public function __construct(string $operatorKey)
    {
        $this->dir = sys_get_temp_dir() . '/toolgate-php-test-' . bin2hex(random_bytes(6));
        if (!mkdir($this->dir, 0700)) {
            throw new \RuntimeException('cannot make ' . $this->dir);
        }
        $env = getenv();
        $env['TOOLGATE_API_KEY'] = $operatorKey;
        $process = proc_open(
            [dirname(__DIR__, 2) . '/testserver.sh', $this->dir . '/toolgate.toml'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', $this->log(), 'w']],
            $pipes,
            null,
            $env,
        );
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot start clients/testserver.sh');
        }
        $this->process = $process;
        $deadline = microtime(true) + 300; // generous: testserver.sh builds the binary when it is missing
        while (true) {
            $addr = $this->listening();
            if ($addr !== null) {
                $this->baseUrl = 'http://' . $addr;

                return;
            }
            if (!proc_get_status($this->process)['running'] || microtime(true) > $deadline) {
                $tail = $this->tail();
                $this->stop();
                throw new \RuntimeException("toolgate did not start:\n" . $tail);
            }
            usleep(50_000);
        }
    }

    private function log(): string
    {
        return $this->dir . '/toolgate.log';
    }

    private function listening(): ?string
    {
        $text = @file_get_contents($this->log());
        if ($text === false) {
            return null;
        }
        foreach (explode("\n", $text) as $line) {
            $doc = json_decode($line, true);
            if (is_array($doc) && ($doc['msg'] ?? null) === 'listening' && is_string($doc['addr'] ?? null)) {
                return $doc['addr'];
            }
        }

        return null;
    }

    public function tail(): string
    {
        $text = @file_get_contents($this->log());

        return $text === false ? '' : implode("\n", array_slice(explode("\n", $text), -100));
    }

    /** SIGTERM, then the exit code (killed after 15 s). */
    public function stop(): int
    {
        $status = proc_get_status($this->process);
        if ($status['running']) {
            proc_terminate($this->process, 15);
            $deadline = microtime(true) + 15;
            while (($status = proc_get_status($this->process))['running'] && microtime(true) < $deadline) {
                usleep(20_000);
            }
            if ($status['running']) {
                proc_terminate($this->process, 9);
            }
        }
        $code = $status['running'] ? -1 : $status['exitcode'];
        proc_close($this->process);
        $this->cleanUp();

        return $code;
    }

    private function cleanUp(): void
    {
        foreach (glob($this->dir . '/*') ?: [] as $f) {
            unlink($f);
        }
        rmdir($this->dir);
    }
}

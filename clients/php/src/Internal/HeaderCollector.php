<?php

declare(strict_types=1);

namespace Toolgate\Internal;

/**
 * @internal collects the status line and headers of the final answer (a 1xx answer's
 * are dropped), for CURLOPT_HEADERFUNCTION
 */
final class HeaderCollector
{
    public int $status = 0;
    public string $reason = '';
    /** @var array<string, string> */
    public array $headers = [];
    /** Whether the final answer's headers are complete. */
    public bool $complete = false;

    public function __invoke(\CurlHandle $ch, string $line): int
    {
        $trimmed = rtrim($line, "\r\n");
        if (preg_match('#^HTTP/\S+\s+(\d{3})\s*(.*)$#', $trimmed, $m) === 1) {
            $this->status = (int) $m[1];
            $this->reason = $m[2];
            $this->headers = [];
            $this->complete = false;
        } elseif ($trimmed === '') {
            $this->complete = $this->status >= 200;
        } elseif (str_contains($trimmed, ':')) {
            [$name, $value] = explode(':', $trimmed, 2);
            $this->headers[strtolower(trim($name))] = trim($value);
        }

        return strlen($line);
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }
}

<?php

declare(strict_types=1);

namespace Toolgate;

/**
 * Send a request again when the server refused it without running it: a problem
 * document with status 429 (rate_limited, overloaded) or 503 (overloaded,
 * circuit_open). The wait is the answer's Retry-After; without one, an exponential
 * backoff from 0.5 s with jitter. A batch that ran (whatever its status) is never
 * sent again.
 */
final class RetryPolicy
{
    /**
     * @param int   $maxRetries how many times one request may be sent again
     * @param float $maxWait    the longest wait in seconds; a longer Retry-After throws at once
     */
    public function __construct(
        public readonly int $maxRetries = 3,
        public readonly float $maxWait = 30.0,
    ) {
        if ($maxRetries < 0 || $maxWait < 0) {
            throw new \InvalidArgumentException('maxRetries and maxWait must not be negative');
        }
    }
}

<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 503: the tool's circuit breaker is open.
 */
class CircuitOpenException extends ToolgateException implements RetryableException
{
    public const CODE = 'circuit_open';
}

<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 429 (the tool's queue is full) or 503 (the server is full or draining).
 */
class OverloadedException extends ToolgateException implements RetryableException
{
    public const CODE = 'overloaded';
}

<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 504: the call's deadline passed, and its work was cancelled.
 */
class TimeoutException extends ToolgateException
{
    public const CODE = 'timeout';
}

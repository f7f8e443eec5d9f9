<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 502: the tool's dependency failed, after any retries.
 */
class UpstreamException extends ToolgateException
{
    public const CODE = 'upstream_error';
}

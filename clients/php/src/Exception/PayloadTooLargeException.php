<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 413: the body is over the server's limit.
 */
class PayloadTooLargeException extends ToolgateException
{
    public const CODE = 'payload_too_large';
}

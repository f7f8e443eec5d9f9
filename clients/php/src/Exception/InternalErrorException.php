<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 500: a bug in the server.
 */
class InternalErrorException extends ToolgateException
{
    public const CODE = 'internal_error';
}

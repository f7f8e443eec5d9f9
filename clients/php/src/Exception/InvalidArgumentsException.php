<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 422: the arguments fail the tool's schema; see getErrors().
 */
class InvalidArgumentsException extends ToolgateException
{
    public const CODE = 'invalid_arguments';
}

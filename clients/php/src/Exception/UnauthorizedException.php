<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 401: no key.
 */
class UnauthorizedException extends ToolgateException
{
    public const CODE = 'unauthorized';
}

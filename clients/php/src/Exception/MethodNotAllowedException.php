<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 405.
 */
class MethodNotAllowedException extends ToolgateException
{
    public const CODE = 'method_not_allowed';
}

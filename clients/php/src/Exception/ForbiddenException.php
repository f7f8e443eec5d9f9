<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 403: an unknown key, or no scope for the tool.
 */
class ForbiddenException extends ToolgateException
{
    public const CODE = 'forbidden';
}

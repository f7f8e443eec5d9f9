<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 500: the tool itself reported failure.
 */
class ToolErrorException extends ToolgateException
{
    public const CODE = 'tool_error';
}

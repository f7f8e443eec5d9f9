<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 404: no such tool.
 */
class ToolNotFoundException extends NotFoundException
{
    public const CODE = 'tool_not_found';
}

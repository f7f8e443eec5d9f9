<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 404: no such route (a wrong base URL?). ToolNotFoundException is a subclass.
 */
class NotFoundException extends ToolgateException
{
    public const CODE = 'not_found';
}

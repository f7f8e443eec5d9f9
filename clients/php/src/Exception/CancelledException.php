<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 499 (batch and stream entries): cancelled by a sibling's failure or the client.
 */
class CancelledException extends ToolgateException
{
    public const CODE = 'cancelled';
}

<?php

declare(strict_types=1);

namespace Toolgate\Stream;

use Toolgate\Exception\ToolgateException;

/**
 * The failure that ended a fail_fast stream (sent right after that call's result).
 */
final class ErrorEvent implements Event
{
    public function __construct(
        public readonly ToolgateException $error,
        public readonly ?string $id = null,
        public readonly ?string $eventId = null,
    ) {
    }

    public function type(): string
    {
        return 'error';
    }

    public function eventId(): ?string
    {
        return $this->eventId;
    }
}

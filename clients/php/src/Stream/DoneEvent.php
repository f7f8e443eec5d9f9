<?php

declare(strict_types=1);

namespace Toolgate\Stream;

/**
 * Always the last event of a stream.
 */
final class DoneEvent implements Event
{
    public function __construct(
        public readonly bool $success,
        public readonly int $calls,
        public readonly int $succeeded,
        public readonly int $failed,
        public readonly ?string $eventId = null,
    ) {
    }

    public function type(): string
    {
        return 'done';
    }

    public function eventId(): ?string
    {
        return $this->eventId;
    }
}

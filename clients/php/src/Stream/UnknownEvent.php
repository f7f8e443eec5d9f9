<?php

declare(strict_types=1);

namespace Toolgate\Stream;

/**
 * An event type this client does not know (from a newer server).
 */
final class UnknownEvent implements Event
{
    public function __construct(
        public readonly string $event,
        public readonly string $data,
        public readonly ?string $eventId = null,
    ) {
    }

    public function type(): string
    {
        return 'unknown';
    }

    public function eventId(): ?string
    {
        return $this->eventId;
    }
}

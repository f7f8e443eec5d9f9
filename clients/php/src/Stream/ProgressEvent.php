<?php

declare(strict_types=1);

namespace Toolgate\Stream;

/**
 * A call's progress. Progress is lossy: a slow reader misses some reports.
 */
final class ProgressEvent implements Event
{
    public function __construct(
        public readonly string $id,
        public readonly string $tool,
        public readonly float $progress,
        public readonly ?float $total = null,
        public readonly ?string $message = null,
        public readonly ?string $eventId = null,
    ) {
    }

    public function type(): string
    {
        return 'progress';
    }

    public function eventId(): ?string
    {
        return $this->eventId;
    }
}

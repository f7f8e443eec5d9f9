<?php

declare(strict_types=1);

namespace Toolgate\Stream;

use Toolgate\BatchEntry;

/**
 * A call ended (one per call, in completion order).
 */
final class ResultEvent implements Event
{
    public function __construct(
        public readonly BatchEntry $entry,
        public readonly ?string $eventId = null,
    ) {
    }

    public function type(): string
    {
        return 'result';
    }

    public function eventId(): ?string
    {
        return $this->eventId;
    }
}

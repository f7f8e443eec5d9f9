<?php

declare(strict_types=1);

namespace Toolgate\Stream;

/**
 * One event of a stream: ProgressEvent, ResultEvent, ErrorEvent, DoneEvent (always
 * last) or UnknownEvent (a type this client does not know).
 */
interface Event
{
    /** "progress", "result", "error", "done" or "unknown". */
    public function type(): string;

    /** The SSE id (1, 2, 3, ... in the order sent). */
    public function eventId(): ?string;
}

<?php

declare(strict_types=1);

namespace Toolgate;

use Toolgate\Exception\ProtocolException;

/**
 * A successful call: the tool's output (decoded as associative arrays) and how long
 * it took.
 */
final class CallResult
{
    public function __construct(
        public readonly string $tool,
        public readonly mixed $output,
        public readonly int $durationMs,
        public readonly ?string $traceId = null,
    ) {
    }

    /**
     * @internal
     */
    public static function fromJson(mixed $v, ?string $traceId): self
    {
        if (!is_array($v) || !is_string($v['tool'] ?? null) || !array_key_exists('output', $v) || !is_int($v['duration_ms'] ?? null)) {
            throw new ProtocolException('a call result without tool, output or duration_ms');
        }

        return new self($v['tool'], $v['output'], $v['duration_ms'], $traceId);
    }
}

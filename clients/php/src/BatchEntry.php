<?php

declare(strict_types=1);

namespace Toolgate;

use Toolgate\Exception\ProtocolException;
use Toolgate\Exception\ToolgateException;

/**
 * The outcome of one call of a batch, or of a stream's `result` event: ok with an
 * output, or not ok with an error (a CancelledException for a sibling that a
 * failure cancelled).
 */
final class BatchEntry
{
    public function __construct(
        public readonly string $id,
        public readonly string $tool,
        public readonly bool $ok,
        public readonly int $durationMs,
        public readonly mixed $output = null,
        public readonly ?ToolgateException $error = null,
    ) {
    }

    /** The output, or throw the entry's error. */
    public function unwrap(): mixed
    {
        if ($this->error !== null) {
            throw $this->error;
        }

        return $this->output;
    }

    /**
     * @internal
     */
    public static function fromJson(mixed $v): self
    {
        if (!is_array($v) || !is_string($v['id'] ?? null) || !is_string($v['tool'] ?? null)
            || !is_bool($v['ok'] ?? null) || !is_int($v['duration_ms'] ?? null)) {
            throw new ProtocolException('a batch entry without id, tool, ok or duration_ms');
        }
        $error = null;
        if (!$v['ok']) {
            if (!is_array($v['error'] ?? null)) {
                throw new ProtocolException('a failed batch entry without an error');
            }
            $error = ToolgateException::fromProblem($v['error']);
        }

        return new self($v['id'], $v['tool'], $v['ok'], $v['duration_ms'], $v['output'] ?? null, $error);
    }
}

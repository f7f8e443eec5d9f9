<?php

declare(strict_types=1);

namespace Toolgate;

use Toolgate\Exception\ProtocolException;
use Toolgate\Exception\ToolgateException;

/**
 * A batch that ran. In fail_fast mode a failure ends it: $status is then that
 * failure's HTTP status, $success is false and $error is the failure.
 */
final class BatchResult
{
    /**
     * @param list<BatchEntry> $data one entry per call, in the order of the calls
     */
    public function __construct(
        public readonly int $status,
        public readonly bool $success,
        public readonly array $data,
        public readonly ?ToolgateException $error = null,
        public readonly ?string $traceId = null,
    ) {
    }

    /** Throw the failure that ended a fail_fast batch, if any. */
    public function throwIfFailed(): void
    {
        if ($this->error !== null) {
            throw $this->error;
        }
    }

    /**
     * @internal
     */
    public static function fromJson(mixed $v, int $status, ?string $traceId): self
    {
        if (!is_array($v) || !is_bool($v['success'] ?? null) || !is_array($v['data'] ?? null) || !array_is_list($v['data'])) {
            throw new ProtocolException('a batch result without success or data');
        }

        return new self(
            $status,
            $v['success'],
            array_map(static fn (mixed $e): BatchEntry => BatchEntry::fromJson($e), $v['data']),
            is_array($v['error'] ?? null) ? ToolgateException::fromProblem($v['error']) : null,
            $traceId,
        );
    }
}

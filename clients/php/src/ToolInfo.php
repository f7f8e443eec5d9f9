<?php

declare(strict_types=1);

namespace Toolgate;

use Toolgate\Exception\ProtocolException;

/**
 * One tool, as GET /api/v1/tools lists it.
 */
final class ToolInfo
{
    /**
     * @param array<mixed>      $inputSchema
     * @param array<mixed>|null $outputSchema
     */
    public function __construct(
        public readonly string $name,
        public readonly string $description,
        public readonly array $inputSchema,
        public readonly bool $readOnly,
        public readonly bool $idempotent,
        public readonly bool $destructive,
        public readonly int $timeoutMs,
        public readonly ?array $outputSchema = null,
    ) {
    }

    /**
     * @internal
     */
    public static function fromJson(mixed $v): self
    {
        if (!is_array($v) || !is_string($v['name'] ?? null) || !is_int($v['timeout_ms'] ?? null)) {
            throw new ProtocolException('a tool without name or timeout_ms');
        }
        $ann = is_array($v['annotations'] ?? null) ? $v['annotations'] : [];

        return new self(
            name: $v['name'],
            description: is_string($v['description'] ?? null) ? $v['description'] : '',
            inputSchema: is_array($v['input_schema'] ?? null) ? $v['input_schema'] : [],
            readOnly: ($ann['read_only'] ?? false) === true,
            idempotent: ($ann['idempotent'] ?? false) === true,
            destructive: ($ann['destructive'] ?? false) === true,
            timeoutMs: $v['timeout_ms'],
            outputSchema: is_array($v['output_schema'] ?? null) ? $v['output_schema'] : null,
        );
    }
}

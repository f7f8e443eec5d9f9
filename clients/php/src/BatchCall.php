<?php

declare(strict_types=1);

namespace Toolgate;

/**
 * One call of a batch. The id defaults to the call's index ("0", "1", ...).
 */
final class BatchCall
{
    /**
     * @param array<mixed>|object|null $arguments null is {}
     */
    public function __construct(
        public readonly string $tool,
        public readonly array|object|null $arguments = null,
        public readonly ?string $id = null,
    ) {
    }

    /**
     * @return array<string, mixed>
     */
    public function toJson(): array
    {
        $out = ['tool' => $this->tool];
        if ($this->id !== null) {
            $out['id'] = $this->id;
        }
        if ($this->arguments !== null) {
            $out['arguments'] = $this->arguments === [] ? new \stdClass() : $this->arguments;
        }

        return $out;
    }
}

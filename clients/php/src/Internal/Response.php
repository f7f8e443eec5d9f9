<?php

declare(strict_types=1);

namespace Toolgate\Internal;

/**
 * @internal an HTTP answer, read in full
 */
final class Response
{
    /**
     * @param array<string, string> $headers lower-cased names
     */
    public function __construct(
        public readonly int $status,
        public readonly string $reason,
        public readonly array $headers,
        public readonly string $body,
    ) {
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }

    public function mediaType(): string
    {
        return self::mediaTypeOf($this->header('content-type'));
    }

    public static function mediaTypeOf(?string $contentType): string
    {
        return strtolower(trim(explode(';', $contentType ?? '', 2)[0]));
    }
}

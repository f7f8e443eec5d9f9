<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * One problem with the arguments: an RFC 6901 pointer ("" is the whole object).
 */
final class FieldError
{
    public function __construct(
        public readonly string $pointer,
        public readonly string $message,
    ) {
    }
}

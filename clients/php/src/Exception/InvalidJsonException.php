<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 400: the body is not a JSON object (or nests too deep).
 */
class InvalidJsonException extends ToolgateException
{
    public const CODE = 'invalid_json';
}

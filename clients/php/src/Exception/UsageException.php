<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * The library was called wrongly (a bad base URL, a non-positive timeout, arguments
 * that do not encode as JSON, an unknown option); nothing was sent.
 */
final class UsageException extends \InvalidArgumentException implements ExceptionInterface
{
}

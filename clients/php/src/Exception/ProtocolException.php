<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * The server answered something this client does not understand: not JSON, not the
 * expected shape or content type, or a stream that ended before its `done` event.
 */
final class ProtocolException extends \RuntimeException implements ExceptionInterface
{
}

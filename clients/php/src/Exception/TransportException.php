<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * The request did not get an answer: connection refused, a timeout of the client, ...
 * The exception code is curl's error number.
 */
final class TransportException extends \RuntimeException implements ExceptionInterface
{
}

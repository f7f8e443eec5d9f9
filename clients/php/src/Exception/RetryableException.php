<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * The server refused the request without running it; it may succeed later
 * (see ToolgateException::getRetryAfter()).
 */
interface RetryableException extends ExceptionInterface
{
}

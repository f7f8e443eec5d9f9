<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * 429: the key's rate limit; getRetryAfter() says when a token is back.
 */
class RateLimitedException extends ToolgateException implements RetryableException
{
    public const CODE = 'rate_limited';
}

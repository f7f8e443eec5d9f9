<?php

declare(strict_types=1);

namespace Toolgate;

/**
 * How a batch treats failures.
 */
enum Mode: string
{
    /** The first failure cancels every sibling still running (the default). */
    case FailFast = 'fail_fast';
    /** Wait for every call. */
    case AllSettled = 'all_settled';
}

<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * Every exception this library throws implements this interface.
 */
interface ExceptionInterface extends \Throwable
{
}

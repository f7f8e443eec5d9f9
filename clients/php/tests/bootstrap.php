<?php

declare(strict_types=1);

// Composer's autoloader when `composer install` ran; otherwise the same PSR-4 mapping
// as composer.json, by hand (so the tests need nothing from Packagist).
$composer = __DIR__ . '/../vendor/autoload.php';
if (is_file($composer)) {
    require $composer;
} else {
    spl_autoload_register(static function (string $class): void {
        $prefixes = [
            'Toolgate\\Tests\\' => __DIR__ . '/',
            'Toolgate\\' => __DIR__ . '/../src/',
        ];
        foreach ($prefixes as $prefix => $dir) {
            if (str_starts_with($class, $prefix)) {
                $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
                if (is_file($file)) {
                    require $file;
                }

                return;
            }
        }
    });
}

error_reporting(E_ALL);

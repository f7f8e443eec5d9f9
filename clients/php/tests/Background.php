<?php

declare(strict_types=1);

namespace Toolgate\Tests;

/**
 * A conformance case's background calls: sent concurrently with curl_multi (PHP has
 * no threads), driven for a while so that they reach the server, then left to the
 * server while the case's steps run, and collected at the end. Their outcomes do not
 * matter: they only hold a slot.
 */
final class Background
{
    private \CurlMultiHandle $multi;
    /** @var list<\CurlHandle> */
    private array $handles = [];

    /**
     * @param array<string, mixed> $req
     */
    public function __construct(string $baseUrl, ?string $key, array $req, object $reqObjects, int $count)
    {
        if ($req['op'] !== 'call') {
            throw new \LogicException('background requests are calls');
        }
        $this->multi = curl_multi_init();
        $headers = ['Content-Type: application/json', 'Expect:'];
        if ($key !== null) {
            $headers[] = 'X-Tool-API-Key: ' . $key;
        }
        for ($i = 0; $i < $count; ++$i) {
            $h = curl_init($baseUrl . '/api/v1/tools/' . rawurlencode($req['tool']));
            curl_setopt_array($h, [
                CURLOPT_POST => true,
                CURLOPT_POSTFIELDS => json_encode($reqObjects->args ?? new \stdClass(), JSON_THROW_ON_ERROR),
                CURLOPT_HTTPHEADER => $headers,
                CURLOPT_RETURNTRANSFER => true,
                CURLOPT_TIMEOUT => 60,
            ]);
            curl_multi_add_handle($this->multi, $h);
            $this->handles[] = $h;
        }
    }

    /** Drives the transfers for $seconds. */
    public function run(float $seconds): void
    {
        $end = microtime(true) + $seconds;
        while (($left = $end - microtime(true)) > 0) {
            curl_multi_exec($this->multi, $running);
            curl_multi_select($this->multi, min($left, 0.05));
        }
    }

    /** Drives the transfers to their end. */
    public function finish(): void
    {
        do {
            curl_multi_exec($this->multi, $running);
            if ($running > 0) {
                curl_multi_select($this->multi, 0.1);
            }
        } while ($running > 0);
        foreach ($this->handles as $h) {
            curl_multi_remove_handle($this->multi, $h);
        }
        $this->handles = [];
        curl_multi_close($this->multi);
    }
}

<?php

declare(strict_types=1);

namespace Toolgate\Tests;

use PHPUnit\Framework\TestCase;
use Toolgate\Client;
use Toolgate\Exception\ProtocolException;
use Toolgate\Stream\ProgressEvent;
use Toolgate\Stream\SseParser;
use Toolgate\Stream\UnknownEvent;

final class SseParserTest extends TestCase
{
    private const STREAM = "\u{FEFF}: a comment\n"
        . "event: progress\nid: 1\ndata: {\"a\":1}\n\n"
        // Multi-line data is joined with \n; one leading space is dropped, not two.
        . "data:first\ndata:  second\ndata\n\n"
        // CRLF and lone CR terminators; the id persists.
        . "event: result\r\ndata: x\r\n\r\n"
        . "event: done\rid: 7\rdata: y\r\r"
        // No data: nothing is dispatched, and the event type is reset.
        . "event: ignored\n\n"
        // Unknown fields are ignored; an id with NUL is ignored; non-ASCII survives.
        . "retry: 10\nfoo: bar\nid: a\0b\ndata: grüße ✓\n\n"
        // An unfinished event at the end is dropped.
        . "event: partial\ndata: lost";

    private const EXPECTED = [
        ['event' => 'progress', 'data' => '{"a":1}', 'id' => '1'],
        ['event' => 'message', 'data' => "first\n second\n", 'id' => '1'],
        ['event' => 'result', 'data' => 'x', 'id' => '1'],
        ['event' => 'done', 'data' => 'y', 'id' => '7'],
        ['event' => 'message', 'data' => 'grüße ✓', 'id' => '7'],
    ];

    public function testWhole(): void
    {
        self::assertSame(self::EXPECTED, (new SseParser())->feed(self::STREAM));
    }

    public function testEverySplitInTwo(): void
    {
        for ($i = 1; $i < strlen(self::STREAM); ++$i) {
            $p = new SseParser();
            $events = array_merge($p->feed(substr(self::STREAM, 0, $i)), $p->feed(substr(self::STREAM, $i)));
            self::assertSame(self::EXPECTED, $events, "split at $i");
        }
    }

    public function testByteByByte(): void
    {
        $p = new SseParser();
        $events = [];
        foreach (str_split(self::STREAM) as $byte) {
            $events = array_merge($events, $p->feed($byte));
        }
        self::assertSame(self::EXPECTED, $events);
    }

    public function testDecode(): void
    {
        $ev = SseParser::decode(['event' => 'progress', 'data' => '{"id":"0","tool":"sleep","progress":100.0,"total":300}', 'id' => '3']);
        self::assertEquals(new ProgressEvent('0', 'sleep', 100.0, 300.0, null, '3'), $ev);
        self::assertEquals(new UnknownEvent('later', '{}', null), SseParser::decode(['event' => 'later', 'data' => '{}', 'id' => null]));
        foreach (['not json', '{"success": true}'] as $data) {
            try {
                SseParser::decode(['event' => 'done', 'data' => $data, 'id' => null]);
                self::fail('no exception');
            } catch (ProtocolException) {
                self::addToAssertionCount(1);
            }
        }
    }

    public function testParseRetryAfter(): void
    {
        $now = gmmktime(3, 4, 5, 1, 2, 2026);
        self::assertSame(1.0, Client::parseRetryAfter('1'));
        self::assertSame(30.0, Client::parseRetryAfter(' 30 '));
        self::assertSame(90.0, Client::parseRetryAfter(gmdate('D, d M Y H:i:s \G\M\T', $now + 90), $now));
        self::assertSame(0.0, Client::parseRetryAfter(gmdate('D, d M Y H:i:s \G\M\T', $now - 90), $now));
        self::assertNull(Client::parseRetryAfter(null));
        self::assertNull(Client::parseRetryAfter('soon'));
        self::assertNull(Client::parseRetryAfter('-1'));
    }
}

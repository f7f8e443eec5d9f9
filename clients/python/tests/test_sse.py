"""The text/event-stream parser, fed whole and in every possible split."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from toolgate_client import ProgressEvent, ToolgateProtocolError, UnknownEvent
from toolgate_client._client import parse_retry_after
from toolgate_client._sse import RawEvent, SSEDecoder, decode_event

STREAM = (
    "\ufeff: a comment\n"
    "event: progress\nid: 1\ndata: {\"a\":1}\n\n"
    # Multi-line data is joined with \n; one leading space is dropped, not two.
    "data:first\ndata:  second\ndata\n\n"
    # CRLF and lone CR terminators; the id persists.
    "event: result\r\ndata: x\r\n\r\n"
    "event: done\rid: 7\rdata: y\r\r"
    # No data: nothing is dispatched, and the event type is reset.
    "event: ignored\n\n"
    # Unknown fields are ignored; an id with NUL is ignored; non-ASCII survives.
    "retry: 10\nfoo: bar\nid: a\x00b\ndata: grüße ✓\n\n"
    # An unfinished event at the end is dropped.
    "event: partial\ndata: lost"
).encode()

EXPECTED = [
    RawEvent("progress", '{"a":1}', "1"),
    RawEvent("message", "first\n second\n", "1"),
    RawEvent("result", "x", "1"),
    RawEvent("done", "y", "7"),
    RawEvent("message", "grüße ✓", "7"),
]


def test_whole() -> None:
    assert SSEDecoder().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("split", range(1, len(STREAM)))
def test_split_in_two(split: int) -> None:
    d = SSEDecoder()
    assert d.feed(STREAM[:split]) + d.feed(STREAM[split:]) == EXPECTED


def test_byte_by_byte() -> None:
    d = SSEDecoder()
    events = []
    for i in range(len(STREAM)):
        events += d.feed(STREAM[i : i + 1])
    assert events == EXPECTED


def test_decode_event() -> None:
    ev = decode_event(RawEvent("progress", '{"id":"0","tool":"sleep","progress":100.0,"total":300}', "3"))
    assert ev == ProgressEvent(id="0", tool="sleep", progress=100.0, total=300.0, event_id="3")
    assert decode_event(RawEvent("later", "{}", None)) == UnknownEvent(event="later", data="{}")
    with pytest.raises(ToolgateProtocolError):
        decode_event(RawEvent("done", "not json", None))
    with pytest.raises(ToolgateProtocolError):
        decode_event(RawEvent("done", '{"success": true}', None))


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 30 ") == 30.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-1") is None

"""An incremental ``text/event-stream`` parser, as the HTML standard defines it."""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass

from ._errors import ToolgateProtocolError
from ._models import KNOWN_EVENTS, StreamEvent, UnknownEvent, parse_event

_EOL = re.compile(r"[\r\n]")


@dataclass(frozen=True)
class RawEvent:
    event: str
    data: str
    id: str | None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events they complete.

    Lines end in CRLF, LF or CR (also across chunk boundaries); a line starting with
    ``:`` is a comment (heartbeat); ``field: value`` drops one space after the colon;
    ``data`` lines are joined with ``\\n``; a blank line dispatches the event (nothing
    when no data arrived); the ``id`` persists across events; an unfinished event at the
    end of the stream is dropped.
    """

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line = ""
        self._after_cr = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[RawEvent]:
        text = self._text.decode(chunk)
        events: list[RawEvent] = []
        i = 0
        while True:
            if self._after_cr and i < len(text):
                # A LF right after a CR belongs to the same line terminator.
                self._after_cr = False
                if text[i] == "\n":
                    i += 1
            m = _EOL.search(text, i)
            if m is None:
                break
            j = m.start()
            line = self._line + text[i:j]
            self._line = ""
            self._after_cr = text[j] == "\r"
            ev = self._process(line)
            if ev is not None:
                events.append(ev)
            i = j + 1
        self._line += text[i:]
        return events

    def _process(self, line: str) -> RawEvent | None:
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if line == "":
            if not self._data:
                self._event = ""
                return None
            ev = RawEvent(self._event or "message", "\n".join(self._data), self._last_id)
            self._event = ""
            self._data = []
            return ev
        if line.startswith(":"):
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        return None


def decode_event(raw: RawEvent) -> StreamEvent:
    """The typed event for a raw one."""
    if raw.event not in KNOWN_EVENTS:
        return UnknownEvent(event=raw.event, data=raw.data, event_id=raw.id)
    try:
        data = json.loads(raw.data)
    except ValueError as e:
        raise ToolgateProtocolError(f"a {raw.event!r} event whose data is not JSON: {e}") from e
    return parse_event(raw.event, data, raw.id)

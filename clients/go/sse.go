package toolgate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The event types of toolgate's streams.
const (
	EventProgress = "progress"
	EventResult   = "result"
	EventError    = "error"
	EventDone     = "done"
)

// Event is one Server-Sent Event of a stream. Type says which of the typed fields is
// set: Progress, Result, Problem or Done. An event of another type (a newer server)
// has only Type, ID and Data.
type Event struct {
	Type string          // "progress", "result", "error", "done", ...
	ID   string          // the SSE id (1, 2, 3, ... in the order sent)
	Data json.RawMessage // the event's data, as sent

	Progress *Progress    // for "progress"
	Result   *BatchEntry  // for "result": one per call, in completion order
	Problem  *StreamError // for "error": the failure that ended a fail_fast stream
	Done     *Done        // for "done": always last
}

// Progress is a call's progress report. Reports are lossy: a slow reader misses some.
type Progress struct {
	ID       string   `json:"id"`
	Tool     string   `json:"tool"`
	Progress float64  `json:"progress"`
	Total    *float64 `json:"total,omitempty"`
	Message  string   `json:"message,omitempty"`
}

// StreamError is a failure of the stream as a whole: in fail_fast mode, the failure
// that ended the group (sent right after that call's result).
type StreamError struct {
	ID    string `json:"id,omitempty"`
	Error *Error `json:"error"`
}

// Done ends every stream.
type Done struct {
	Success   bool `json:"success"`
	Calls     int  `json:"calls"`
	Succeeded int  `json:"succeeded"`
	Failed    int  `json:"failed"`
}

// Stream reads the events of a streamed call or batch:
//
//	s, err := c.Stream(ctx, "sleep", map[string]any{"ms": 300})
//	if err != nil { ... }
//	defer func() {
//		if err := s.Close(); err != nil { ... } // closing before done cancels the calls
//	}()
//	for s.Next() {
//		ev := s.Event()
//		...
//	}
//	if err := s.Err(); err != nil { ... }
//
// Next returns false after the done event, at the end of the stream or on an error.
type Stream struct {
	body    io.ReadCloser
	dec     *sseDecoder
	ev      Event
	err     error
	done    bool
	closed  bool
	traceID string
}

func newStream(body io.ReadCloser, traceID string) *Stream {
	return &Stream{body: body, dec: newSSEDecoder(body), traceID: traceID}
}

// TraceID is the stream's trace id (the X-Trace-Id response header).
func (s *Stream) TraceID() string { return s.traceID }

// Next reads the next event; it returns false when there is none.
func (s *Stream) Next() bool {
	if s.done || s.err != nil || s.closed {
		return false
	}
	raw, err := s.dec.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errStreamEnded
		}
		s.fail(err)
		return false
	}
	ev, err := decodeEvent(raw)
	if err != nil {
		s.fail(err)
		return false
	}
	s.ev = ev
	if ev.Type == EventDone {
		s.done = true
		if err := s.close(); err != nil {
			s.err = err
		}
	}
	return true
}

// Event is the event that the last successful Next read.
func (s *Stream) Event() Event { return s.ev }

// Err is the error that ended the stream, or nil after its done event.
func (s *Stream) Err() error { return s.err }

// Close ends the stream. Closed before its done event, it cancels the stream's calls
// on the server.
func (s *Stream) Close() error {
	if s.closed {
		return nil
	}
	return s.close()
}

func (s *Stream) close() error {
	s.closed = true
	if err := s.body.Close(); err != nil {
		return fmt.Errorf("toolgate: closing the stream: %w", err)
	}
	return nil
}

func (s *Stream) fail(err error) {
	s.err = err
	if cerr := s.close(); cerr != nil {
		s.err = fmt.Errorf("%w (and %v)", err, cerr)
	}
}

func decodeEvent(raw sseEvent) (Event, error) {
	ev := Event{Type: raw.event, ID: raw.id, Data: json.RawMessage(raw.data)}
	var target any
	switch raw.event {
	case EventProgress:
		ev.Progress = &Progress{}
		target = ev.Progress
	case EventResult:
		ev.Result = &BatchEntry{}
		target = ev.Result
	case EventError:
		ev.Problem = &StreamError{}
		target = ev.Problem
	case EventDone:
		ev.Done = &Done{}
		target = ev.Done
	default:
		return ev, nil
	}
	if err := json.Unmarshal([]byte(raw.data), target); err != nil {
		return Event{}, fmt.Errorf("toolgate: decoding a %q event: %w", raw.event, err)
	}
	return ev, nil
}

// === text/event-stream ===

// sseEvent is one dispatched event of the text/event-stream format.
type sseEvent struct {
	event string
	data  string
	id    string
}

// sseDecoder parses text/event-stream as the HTML standard defines it: lines end in
// CRLF, LF or CR; a line starting with ':' is a comment; "field: value" (one space
// after the colon is dropped); data lines are joined with "\n"; a blank line
// dispatches the event (none when no data arrived); the id persists across events; an
// unfinished event at the end of the stream is dropped.
type sseDecoder struct {
	r       *bufio.Reader
	buf     bytes.Buffer
	started bool
	afterCR bool
	lastID  string
}

func newSSEDecoder(r io.Reader) *sseDecoder {
	return &sseDecoder{r: bufio.NewReaderSize(r, 16<<10)}
}

// next returns the next event, io.EOF at the end of the stream, or the read error.
func (d *sseDecoder) next() (sseEvent, error) {
	var (
		event   string
		data    strings.Builder
		hasData bool
	)
	for {
		line, err := d.line()
		if err != nil {
			return sseEvent{}, err
		}
		if line == "" {
			if !hasData {
				event = ""
				continue
			}
			if event == "" {
				event = "message"
			}
			return sseEvent{event: event, data: strings.TrimSuffix(data.String(), "\n"), id: d.lastID}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, ""
		if i := strings.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], strings.TrimPrefix(line[i+1:], " ")
		}
		switch field {
		case "event":
			event = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				d.lastID = value
			}
		}
	}
}

// line reads one line without its terminator (CRLF, LF or CR). A last line without a
// terminator is dropped along with its event, so the end of input is io.EOF.
func (d *sseDecoder) line() (string, error) {
	d.buf.Reset()
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			return "", err
		}
		if d.afterCR {
			// A LF right after a CR belongs to the same terminator.
			d.afterCR = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return d.bom(d.buf.String()), nil
		case '\r':
			d.afterCR = true
			return d.bom(d.buf.String()), nil
		default:
			d.buf.WriteByte(b)
		}
	}
}

// bom drops a UTF-8 byte order mark at the start of the stream.
func (d *sseDecoder) bom(line string) string {
	if !d.started {
		d.started = true
		return strings.TrimPrefix(line, "\ufeff")
	}
	return line
}

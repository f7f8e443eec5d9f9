package toolgate

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func decodeAll(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	d := newSSEDecoder(r)
	var out []sseEvent
	for {
		ev, err := d.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

func TestSSEDecoderFollowsTheStandard(t *testing.T) {
	input := "\ufeff: a comment\n" +
		"event: progress\nid: 1\ndata: {\"a\":1}\n\n" +
		// Multi-line data is joined with \n; one leading space is dropped, not two.
		"data:first\ndata:  second\ndata\n\n" +
		// CRLF and lone CR terminators; the id persists.
		"event: result\r\ndata: x\r\n\r\n" +
		"event: done\rid: 7\rdata: y\r\r" +
		// No data: nothing is dispatched, and the event type is reset.
		"event: ignored\n\n" +
		// Unknown fields are ignored; an id with NUL is ignored.
		"retry: 10\nfoo: bar\nid: a\x00b\ndata: z\n\n" +
		// An unfinished event at the end is dropped.
		"event: partial\ndata: lost"
	want := []sseEvent{
		{event: "progress", id: "1", data: `{"a":1}`},
		{event: "message", id: "1", data: "first\n second\n"},
		{event: "result", id: "1", data: "x"},
		{event: "done", id: "7", data: "y"},
		{event: "message", id: "7", data: "z"},
	}
	for name, r := range map[string]io.Reader{
		"whole":        strings.NewReader(input),
		"byte by byte": iotest.OneByteReader(strings.NewReader(input)),
	} {
		if got := decodeAll(t, r); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", name, got, want)
		}
	}
}

func TestSSEDecoderReportsReadErrors(t *testing.T) {
	boom := errors.New("boom")
	d := newSSEDecoder(io.MultiReader(strings.NewReader("data: x\n"), iotest.ErrReader(boom)))
	if _, err := d.next(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
}

func TestStreamWithoutDoneIsAnError(t *testing.T) {
	s := newStream(io.NopCloser(strings.NewReader("event: progress\ndata: {\"id\":\"0\",\"tool\":\"t\",\"progress\":1}\n\n")), "")
	if !s.Next() || s.Event().Progress == nil || s.Event().Progress.Progress != 1 {
		t.Fatalf("first event: %#v, %v", s.Event(), s.Err())
	}
	if s.Next() {
		t.Fatal("a second event")
	}
	if !errors.Is(s.Err(), errStreamEnded) {
		t.Fatalf("got %v", s.Err())
	}
}

func TestStreamDecodesEveryEventType(t *testing.T) {
	body := "event: result\nid: 1\ndata: {\"id\":\"0\",\"tool\":\"fail\",\"ok\":false,\"duration_ms\":0,\"error\":{\"code\":\"tool_error\",\"status\":500,\"detail\":\"nope\"}}\n\n" +
		"event: error\nid: 2\ndata: {\"id\":\"0\",\"error\":{\"code\":\"tool_error\",\"status\":500}}\n\n" +
		"event: surprise\nid: 3\ndata: {}\n\n" +
		"event: done\nid: 4\ndata: {\"success\":false,\"calls\":1,\"succeeded\":0,\"failed\":1}\n\n"
	s := newStream(io.NopCloser(strings.NewReader(body)), "t")
	var types []string
	for s.Next() {
		ev := s.Event()
		types = append(types, ev.Type)
		switch ev.Type {
		case EventResult:
			if ev.Result.OK || ev.Result.Error.Code != CodeToolError || !IsCode(ev.Result.Err(), CodeToolError) {
				t.Errorf("result: %#v", ev.Result)
			}
		case EventError:
			if ev.Problem.ID != "0" || ev.Problem.Error.Status != 500 {
				t.Errorf("error: %#v", ev.Problem)
			}
		case EventDone:
			if ev.Done.Success || ev.Done.Failed != 1 {
				t.Errorf("done: %#v", ev.Done)
			}
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"result", "error", "surprise", "done"}; !reflect.DeepEqual(types, want) {
		t.Fatalf("got %v", types)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"1":   time.Second,
		" 30": 30 * time.Second,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		got, ok := parseRetryAfter(in, now)
		if !ok || got != want {
			t.Errorf("%q: got %v %v, want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "soon"} {
		if _, ok := parseRetryAfter(in, now); ok {
			t.Errorf("%q parsed", in)
		}
	}
}

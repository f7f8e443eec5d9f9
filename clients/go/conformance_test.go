package toolgate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	toolgate "github.com/toolgate/toolgate-go"
)

// The conformance file and the server: TestMain starts a real toolgate with
// clients/testserver.sh and stops it with SIGTERM when the tests are done.

type suite struct {
	Keys  map[string]*string `json:"keys"`
	Cases []testCase         `json:"cases"`
}

type testCase struct {
	Name       string      `json:"name"`
	Background *background `json:"background"`
	Steps      []step      `json:"steps"`
}

type background struct {
	Request request `json:"request"`
	Count   int     `json:"count"`
	WaitMS  int     `json:"wait_ms"`
}

type step struct {
	Request request `json:"request"`
	Expect  *expect `json:"expect"`
}

type request struct {
	Op   string          `json:"op"`
	Key  string          `json:"key"`
	Tool string          `json:"tool"`
	Args json.RawMessage `json:"args"`
	Pad  *struct {
		Field string `json:"field"`
		Bytes int    `json:"bytes"`
	} `json:"pad"`
	TimeoutMS int `json:"timeout_ms"`
	Calls     []struct {
		ID   string          `json:"id"`
		Tool string          `json:"tool"`
		Args json.RawMessage `json:"args"`
	} `json:"calls"`
	Mode  string `json:"mode"`
	Retry *struct {
		MaxRetries int `json:"max_retries"`
		MaxWaitMS  int `json:"max_wait_ms"`
	} `json:"retry"`
	CloseAfterEvents int `json:"close_after_events"`
}

type expect struct {
	Error *struct {
		Status     int       `json:"status"`
		Code       string    `json:"code"`
		Tool       *string   `json:"tool"`
		Detail     *string   `json:"detail"`
		Pointers   *[]string `json:"pointers"`
		RetryAfter bool      `json:"retry_after"`
	} `json:"error"`
	Result any `json:"result"`
	Tool   any `json:"tool"`
	Tools  *struct {
		Include []string `json:"include"`
		Exactly []string `json:"exactly"`
	} `json:"tools"`
	Batch        any            `json:"batch"`
	Events       []eventPattern `json:"events"`
	MinElapsedMS int            `json:"min_elapsed_ms"`
	MaxElapsedMS int            `json:"max_elapsed_ms"`
}

type eventPattern struct {
	Event string          `json:"event"`
	Min   *int            `json:"min"`
	Max   json.RawMessage `json:"max"` // absent: 1; null: any number
	Match any             `json:"match"`
}

var (
	conformance suite
	baseURL     string
)

func TestMain(m *testing.M) {
	os.Exit(runWithServer(m))
}

func runWithServer(m *testing.M) int {
	b, err := os.ReadFile(filepath.Join("..", "conformance.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the conformance file:", err)
		return 1
	}
	if err := json.Unmarshal(b, &conformance); err != nil {
		fmt.Fprintln(os.Stderr, "decoding the conformance file:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "toolgate-go-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	srv, err := startServer(filepath.Join(dir, "toolgate.toml"), *conformance.Keys["operator"])
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting toolgate:", err)
		return 1
	}
	baseURL = "http://" + srv.addr
	code := m.Run()
	if err := srv.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping toolgate:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

type server struct {
	cmd     *exec.Cmd
	addr    string
	exited  chan error
	mu      sync.Mutex
	logTail []string
}

// startServer runs clients/testserver.sh and waits for its "listening" log line; a
// goroutine keeps draining stderr so that the server never blocks on it.
func startServer(config, operatorKey string) (*server, error) {
	cmd := exec.Command(filepath.Join("..", "testserver.sh"), config)
	cmd.Env = append(os.Environ(), "TOOLGATE_API_KEY="+operatorKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, exited: make(chan error, 1)}
	addrs := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logTail = append(s.logTail, line)
			if len(s.logTail) > 200 {
				s.logTail = s.logTail[1:]
			}
			s.mu.Unlock()
			var v struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &v) == nil && v.Msg == "listening" && v.Addr != "" {
				select {
				case addrs <- v.Addr:
				default:
				}
			}
		}
	}()
	go func() {
		<-readDone // Wait must not run before the pipe is drained.
		s.exited <- cmd.Wait()
	}()
	select {
	case s.addr = <-addrs:
		return s, nil
	case err := <-s.exited:
		return nil, fmt.Errorf("the server exited (%v):\n%s", err, s.tail())
	case <-time.After(5 * time.Minute):
		if kerr := cmd.Process.Kill(); kerr != nil {
			return nil, fmt.Errorf("the server did not start, and killing it failed: %v", kerr)
		}
		return nil, fmt.Errorf("the server did not start:\n%s", s.tail())
	}
}

func (s *server) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logTail, "\n")
}

func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.exited:
		if err != nil {
			return fmt.Errorf("exit: %w\n%s", err, s.tail())
		}
		return nil
	case <-time.After(15 * time.Second):
		if err := s.cmd.Process.Kill(); err != nil {
			return err
		}
		return errors.New("the server did not stop within 15 s of SIGTERM")
	}
}

// === running the cases ===

func TestConformance(t *testing.T) {
	if len(conformance.Cases) == 0 {
		t.Fatal("no conformance cases")
	}
	for _, tc := range conformance.Cases {
		tc := tc
		t.Run(tc.Name, func(t *testing.T) { runCase(t, tc) })
	}
}

func runCase(t *testing.T, tc testCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	if bg := tc.Background; bg != nil {
		for i := 0; i < bg.Count; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A background request only holds a slot: its outcome does not matter.
				perform(ctx, t, bg.Request)
			}()
		}
		time.Sleep(time.Duration(bg.WaitMS) * time.Millisecond)
	}
	for i, st := range tc.Steps {
		out := perform(ctx, t, st.Request)
		if st.Expect != nil {
			check(t, fmt.Sprintf("step %d", i), st.Expect, out)
		}
	}
	wg.Wait()
}

type outcome struct {
	value   any // the result, as JSON values
	events  []any
	err     error
	elapsed time.Duration
}

func clientFor(t *testing.T, r request) *toolgate.Client {
	key, ok := conformance.Keys[r.Key]
	if !ok {
		t.Fatalf("unknown key %q", r.Key)
	}
	var opts []toolgate.Option
	if key != nil {
		opts = append(opts, toolgate.WithAPIKey(*key))
	}
	if r.Retry != nil {
		opts = append(opts, toolgate.WithRetry(toolgate.RetryPolicy{
			MaxRetries: r.Retry.MaxRetries,
			MaxWait:    time.Duration(r.Retry.MaxWaitMS) * time.Millisecond,
		}))
	}
	c, err := toolgate.New(baseURL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// args is the request's arguments: raw JSON (or nil for none), with the padding.
func args(t *testing.T, raw json.RawMessage, r request) any {
	if r.Pad != nil {
		m := map[string]any{}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
		}
		m[r.Pad.Field] = strings.Repeat("x", r.Pad.Bytes)
		return m
	}
	if raw == nil {
		return nil
	}
	return raw
}

func batch(t *testing.T, r request) ([]toolgate.BatchCall, *toolgate.BatchOptions) {
	calls := make([]toolgate.BatchCall, 0, len(r.Calls))
	for _, c := range r.Calls {
		bc := toolgate.BatchCall{ID: c.ID, Tool: c.Tool}
		if c.Args != nil {
			bc.Arguments = c.Args
		}
		calls = append(calls, bc)
	}
	return calls, &toolgate.BatchOptions{
		Mode:    toolgate.Mode(r.Mode),
		Timeout: time.Duration(r.TimeoutMS) * time.Millisecond,
	}
}

func perform(ctx context.Context, t *testing.T, r request) outcome {
	c := clientFor(t, r)
	var opts []toolgate.CallOption
	if r.TimeoutMS > 0 {
		opts = append(opts, toolgate.Timeout(time.Duration(r.TimeoutMS)*time.Millisecond))
	}
	start := time.Now()
	var out outcome
	switch r.Op {
	case "tools":
		tools, err := c.Tools(ctx)
		out.err = err
		if err == nil {
			names := []any{}
			for _, tool := range tools {
				names = append(names, tool.Name)
			}
			out.value = names
		}
	case "tool":
		tool, err := c.Tool(ctx, r.Tool)
		out.err = err
		if err == nil {
			out.value = asJSON(t, tool)
		}
	case "call":
		res, err := c.Call(ctx, r.Tool, args(t, r.Args, r), opts...)
		out.err = err
		if err == nil {
			out.value = asJSON(t, res)
		}
	case "execute":
		calls, bopts := batch(t, r)
		res, err := c.Execute(ctx, calls, bopts)
		out.err = err
		if err == nil {
			out.value = asJSON(t, res)
			if res.Success && res.Err() != nil {
				t.Errorf("a successful batch with an error: %v", res.Err())
			}
		}
	case "stream", "stream_execute":
		var s *toolgate.Stream
		var err error
		if r.Op == "stream" {
			s, err = c.Stream(ctx, r.Tool, args(t, r.Args, r), opts...)
		} else {
			calls, bopts := batch(t, r)
			s, err = c.StreamExecute(ctx, calls, bopts)
		}
		out.err = err
		if err != nil {
			break
		}
		if s.TraceID() == "" {
			t.Error("the stream has no trace id")
		}
		closedEarly := false
		for s.Next() {
			out.events = append(out.events, eventJSON(t, s.Event()))
			if r.CloseAfterEvents > 0 && len(out.events) >= r.CloseAfterEvents {
				closedEarly = true
				if err := s.Close(); err != nil {
					t.Errorf("closing the stream: %v", err)
				}
				break
			}
		}
		if err := s.Err(); err != nil && !closedEarly {
			t.Errorf("the stream failed: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("closing the stream: %v", err)
		}
	default:
		t.Fatalf("unknown op %q", r.Op)
	}
	out.elapsed = time.Since(start)
	return out
}

// eventJSON is a typed event as {"event": type, "data": the typed value, as JSON}.
func eventJSON(t *testing.T, ev toolgate.Event) any {
	var data any
	switch ev.Type {
	case toolgate.EventProgress:
		data = asJSON(t, ev.Progress)
	case toolgate.EventResult:
		data = asJSON(t, ev.Result)
	case toolgate.EventError:
		data = asJSON(t, ev.Problem)
	case toolgate.EventDone:
		data = asJSON(t, ev.Done)
	default:
		t.Errorf("an unexpected event type %q", ev.Type)
	}
	if ev.ID == "" {
		t.Errorf("a %s event without an id", ev.Type)
	}
	return map[string]any{"event": ev.Type, "data": data}
}

func asJSON(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func check(t *testing.T, where string, want *expect, got outcome) {
	t.Helper()
	if want.MinElapsedMS > 0 && got.elapsed < time.Duration(want.MinElapsedMS)*time.Millisecond {
		t.Errorf("%s: took %v, expected at least %d ms", where, got.elapsed, want.MinElapsedMS)
	}
	if want.MaxElapsedMS > 0 && got.elapsed > time.Duration(want.MaxElapsedMS)*time.Millisecond {
		t.Errorf("%s: took %v, expected at most %d ms", where, got.elapsed, want.MaxElapsedMS)
	}
	if want.Error != nil {
		checkError(t, where, want, got.err)
		return
	}
	if got.err != nil {
		t.Errorf("%s: unexpected error: %v", where, got.err)
		return
	}
	var problems []string
	switch {
	case want.Tools != nil:
		names := map[string]bool{}
		var list []string
		for _, n := range got.value.([]any) {
			names[n.(string)] = true
			list = append(list, n.(string))
		}
		for _, n := range want.Tools.Include {
			if !names[n] {
				problems = append(problems, fmt.Sprintf("tool %q is not listed in %v", n, list))
			}
		}
		if want.Tools.Exactly != nil {
			w := append([]string(nil), want.Tools.Exactly...)
			sort.Strings(w)
			sort.Strings(list)
			if !reflect.DeepEqual(w, list) {
				problems = append(problems, fmt.Sprintf("tools %v, expected exactly %v", list, w))
			}
		}
	case want.Tool != nil:
		match(want.Tool, got.value, "tool", &problems)
	case want.Result != nil:
		match(want.Result, got.value, "result", &problems)
	case want.Batch != nil:
		match(want.Batch, got.value, "batch", &problems)
	case want.Events != nil:
		problems = matchEvents(want.Events, got.events)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", where, p)
	}
}

func checkError(t *testing.T, where string, want *expect, err error) {
	t.Helper()
	w := want.Error
	if err == nil {
		t.Errorf("%s: expected a %d %s error, got success", where, w.Status, w.Code)
		return
	}
	var e *toolgate.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: expected a *toolgate.Error, got %T: %v", where, err, err)
		return
	}
	if e.Status != w.Status || string(e.Code) != w.Code {
		t.Errorf("%s: got %d %s, expected %d %s (%v)", where, e.Status, e.Code, w.Status, w.Code, err)
	}
	if !toolgate.IsCode(err, toolgate.Code(w.Code)) {
		t.Errorf("%s: IsCode(err, %q) is false", where, w.Code)
	}
	if e.TraceID == "" || e.Detail == "" || e.Title == "" || e.Type == "" {
		t.Errorf("%s: the problem lacks trace_id, detail, title or type: %#v", where, e)
	}
	if w.Tool != nil && e.Tool != *w.Tool {
		t.Errorf("%s: tool %q, expected %q", where, e.Tool, *w.Tool)
	}
	if w.Detail != nil && e.Detail != *w.Detail {
		t.Errorf("%s: detail %q, expected %q", where, e.Detail, *w.Detail)
	}
	if w.Pointers != nil {
		var ptrs []string
		for _, fe := range e.Errors {
			ptrs = append(ptrs, fe.Pointer)
			if fe.Message == "" {
				t.Errorf("%s: field error %q without a message", where, fe.Pointer)
			}
		}
		if !reflect.DeepEqual(ptrs, *w.Pointers) {
			t.Errorf("%s: pointers %q, expected %q", where, ptrs, *w.Pointers)
		}
	}
	if w.RetryAfter && e.RetryAfter <= 0 {
		t.Errorf("%s: no Retry-After on %v", where, err)
	}
	if !strings.Contains(err.Error(), w.Code) {
		t.Errorf("%s: the message %q does not name the code", where, err.Error())
	}
}

// matchEvents matches the events against the patterns, in order: each pattern takes
// between min (default 1) and max (default 1; null: unbounded) matching events.
func matchEvents(patterns []eventPattern, events []any) []string {
	i := 0
	for n, p := range patterns {
		lo, hi := 1, 1
		if p.Min != nil {
			lo = *p.Min
		}
		switch {
		case p.Max == nil:
		case string(p.Max) == "null":
			hi = -1
		default:
			if err := json.Unmarshal(p.Max, &hi); err != nil {
				return []string{fmt.Sprintf("pattern %d: bad max %s", n, p.Max)}
			}
		}
		count := 0
		for i < len(events) && (hi < 0 || count < hi) && eventMatches(p, events[i]) {
			count++
			i++
		}
		if count < lo {
			return []string{fmt.Sprintf("pattern %d (%s): %d matching events, expected at least %d; events: %s", n, p.Event, count, lo, dump(events))}
		}
	}
	if i != len(events) {
		return []string{fmt.Sprintf("%d unexpected events after the patterns; events: %s", len(events)-i, dump(events))}
	}
	return nil
}

func eventMatches(p eventPattern, ev any) bool {
	m := ev.(map[string]any)
	if m["event"] != p.Event {
		return false
	}
	if p.Match == nil {
		return true
	}
	var problems []string
	match(p.Match, m["data"], "data", &problems)
	return len(problems) == 0
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// match checks got against want: objects by their expected keys, arrays element by
// element, "<any>" for any present value, other values by equality.
func match(want, got any, path string, problems *[]string) {
	if s, ok := want.(string); ok && s == "<any>" {
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*problems = append(*problems, fmt.Sprintf("%s: expected an object, got %s", path, dump(got)))
			return
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				*problems = append(*problems, fmt.Sprintf("%s.%s: missing in %s", path, k, dump(got)))
				continue
			}
			match(wv, gv, path+"."+k, problems)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			*problems = append(*problems, fmt.Sprintf("%s: expected %s, got %s", path, dump(want), dump(got)))
			return
		}
		for i := range w {
			match(w[i], g[i], fmt.Sprintf("%s[%d]", path, i), problems)
		}
	default:
		if !reflect.DeepEqual(want, got) {
			*problems = append(*problems, fmt.Sprintf("%s: expected %s, got %s", path, dump(want), dump(got)))
		}
	}
}

package toolgate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	toolgate "github.com/toolgate/toolgate-go"
)

// Behaviour the real server cannot be made to show on demand: answers from a fake.

func fake(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, url string, opts ...toolgate.Option) *toolgate.Client {
	t.Helper()
	c, err := toolgate.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func problem(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	if _, err := io.WriteString(w, body); err != nil {
		panic(err)
	}
}

func TestUpstreamErrorIsDecoded(t *testing.T) {
	s := fake(t, func(w http.ResponseWriter, r *http.Request) {
		problem(w, 502, `{"type":"urn:toolgate:problem:upstream_error","title":"Upstream error","status":502,"detail":"inventory failed","code":"upstream_error","tool":"inventory","trace_id":"abc"}`)
	})
	_, err := newClient(t, s.URL).Call(context.Background(), "inventory", nil)
	var e *toolgate.Error
	if !errors.As(err, &e) || e.Code != toolgate.CodeUpstreamError || e.Status != 502 || e.Tool != "inventory" || e.TraceID != "abc" {
		t.Fatalf("got %#v", err)
	}
	wrapped := fmt.Errorf("outer: %w", err)
	if !toolgate.IsCode(wrapped, toolgate.CodeUpstreamError) {
		t.Fatal("IsCode does not see through wrapping")
	}
}

func TestAnAnswerThatIsNoProblemIsAnErrorWithTheStatus(t *testing.T) {
	s := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("X-Trace-Id", "t1")
		w.WriteHeader(502)
		if _, err := io.WriteString(w, "<html>bad gateway</html>"); err != nil {
			panic(err)
		}
	})
	_, err := newClient(t, s.URL).Tools(context.Background())
	var e *toolgate.Error
	if !errors.As(err, &e) || e.Status != 502 || e.Code != "" || e.Detail != "<html>bad gateway</html>" || e.TraceID != "t1" {
		t.Fatalf("got %#v", err)
	}
}

func TestRetriesHonourRetryAfterAndStop(t *testing.T) {
	var hits atomic.Int32
	s := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			problem(w, 503, `{"status":503,"code":"overloaded","title":"Overloaded","detail":"busy"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if _, err := io.WriteString(w, `{"tool":"echo","output":{},"duration_ms":0}`); err != nil {
			panic(err)
		}
	})
	c := newClient(t, s.URL, toolgate.WithRetry(toolgate.RetryPolicy{MaxRetries: 2, MaxWait: time.Second}))
	if _, err := c.Call(context.Background(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 3 {
		t.Fatalf("%d requests", hits.Load())
	}
	hits.Store(0)
	c = newClient(t, s.URL, toolgate.WithRetry(toolgate.RetryPolicy{MaxRetries: 1, MaxWait: time.Second}))
	if _, err := c.Call(context.Background(), "echo", nil); !toolgate.IsCode(err, toolgate.CodeOverloaded) {
		t.Fatalf("got %v", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("%d requests", hits.Load())
	}
}

func TestRetryWaitEndsWithTheContext(t *testing.T) {
	s := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		problem(w, 429, `{"status":429,"code":"rate_limited"}`)
	})
	c := newClient(t, s.URL, toolgate.WithRetry(toolgate.RetryPolicy{MaxRetries: 3, MaxWait: time.Minute}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Call(ctx, "echo", nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

func TestABatchThatRanIsNeverRetried(t *testing.T) {
	var hits atomic.Int32
	s := fake(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(429)
		if _, err := io.WriteString(w, `{"success":false,"data":[{"id":"0","tool":"t","ok":false,"duration_ms":0,"error":{"status":429,"code":"overloaded"}}],"error":{"status":429,"code":"overloaded"}}`); err != nil {
			panic(err)
		}
	})
	c := newClient(t, s.URL, toolgate.WithRetry(toolgate.RetryPolicy{MaxRetries: 3}))
	res, err := c.Execute(context.Background(), []toolgate.BatchCall{{Tool: "t"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 || res.Status != 429 || res.Success || !toolgate.IsCode(res.Err(), toolgate.CodeOverloaded) {
		t.Fatalf("%d requests, %#v", hits.Load(), res)
	}
	if !toolgate.IsCode(res.Data[0].Err(), toolgate.CodeOverloaded) {
		t.Fatalf("entry: %v", res.Data[0].Err())
	}
}

func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body []byte
	s := fake(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, err := io.ReadAll(r.Body)
		if err != nil {
			panic(err)
		}
		body = b
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Trace-Id", "trace")
		if _, err := io.WriteString(w, `{"tool":"a b","output":{"n":1},"duration_ms":3}`); err != nil {
			panic(err)
		}
	})
	c := newClient(t, s.URL+"/prefix/", toolgate.WithAPIKey("k"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Call(ctx, "a b", nil, toolgate.Timeout(1500*time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.EscapedPath() != "/prefix/api/v1/tools/a%20b" || got.Header.Get("X-Tool-API-Key") != "k" ||
		got.Header.Get("Content-Type") != "application/json" || string(body) != "{}" {
		t.Fatalf("request %s %v %q", got.URL.EscapedPath(), got.Header, body)
	}
	if h := got.Header.Get("X-Request-Timeout-Ms"); h != "2" {
		t.Fatalf("timeout header %q", h)
	}
	var out struct{ N int }
	if err := res.Decode(&out); err != nil || out.N != 1 || res.TraceID != "trace" || res.DurationMS != 3 {
		t.Fatalf("%#v %v", res, err)
	}

	// Without an explicit timeout, the context's deadline is sent.
	if _, err := c.Call(ctx, "x", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.Atoi(got.Header.Get("X-Request-Timeout-Ms"))
	if err != nil || ms < 9000 || ms > 10000 || string(body) != `{"a":1}` {
		t.Fatalf("timeout header %q, body %q", got.Header.Get("X-Request-Timeout-Ms"), body)
	}
	if _, err := c.Call(context.Background(), "x", nil); err != nil {
		t.Fatal(err)
	}
	if h := got.Header.Get("X-Request-Timeout-Ms"); h != "" {
		t.Fatalf("timeout header %q without a deadline", h)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := toolgate.New(u); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

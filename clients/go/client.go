// Package toolgate is a client for the toolgate tool server's HTTP API (contract v1):
// list tools, call one, run a batch, and stream progress and results as Server-Sent
// Events. It uses only the standard library.
//
//	c, err := toolgate.New("http://127.0.0.1:8080", toolgate.WithAPIKey(key))
//	if err != nil { ... }
//	res, err := c.Call(ctx, "echo", map[string]any{"hello": "agents"})
//	var e *toolgate.Error
//	if errors.As(err, &e) { log.Print(e.Code, e.Status, e.Detail, e.TraceID) }
//
// Every non-2xx answer becomes an *Error carrying the contract's code, the HTTP status,
// the detail and the trace id. Deadlines come from the context: a context deadline is
// also sent to the server (X-Request-Timeout-Ms) so that it stops the work in time.
package toolgate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the client's version, sent in the User-Agent header.
const Version = "0.1.0"

const (
	headerKey       = "X-Tool-API-Key"
	headerTimeout   = "X-Request-Timeout-Ms"
	headerTraceID   = "X-Trace-Id"
	maxErrorBody    = 1 << 20
	defaultMaxWait  = 30 * time.Second
	baseBackoff     = 500 * time.Millisecond
	problemMimeType = "application/problem+json"
)

// Client calls one toolgate server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	key       string
	http      *http.Client
	retry     RetryPolicy
	userAgent string

	mu  sync.Mutex
	rng *rand.Rand
}

// RetryPolicy makes the client send a request again when the server refused it without
// running it: a problem document with status 429 (rate_limited, overloaded) or 503
// (overloaded, circuit_open). The wait is the answer's Retry-After; without one, an
// exponential backoff from 500 ms with jitter. A batch that ran (whatever its status)
// is never sent again.
type RetryPolicy struct {
	// MaxRetries is how many times one request may be sent again; 0 turns retries off.
	MaxRetries int
	// MaxWait bounds one wait (default 30 s). When Retry-After asks for longer, the
	// error is returned at once rather than waited for.
	MaxWait time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey sets the key sent as X-Tool-API-Key. Without one, requests carry no key
// (and the server answers 401 unauthorized).
func WithAPIKey(key string) Option {
	return func(c *Client) { c.key = key }
}

// WithHTTPClient sets the *http.Client (default: a new one without a timeout; use
// contexts for deadlines). Its Timeout, if any, also bounds streams.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http = h }
}

// WithRetry turns on retries of refused requests (see RetryPolicy).
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) { c.retry = p }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New makes a client for the server at baseURL (e.g. "http://127.0.0.1:8080"; a path
// prefix is kept, for servers behind a proxy).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("toolgate: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("toolgate: base URL %q: want http(s)://host[:port][/prefix]", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		base:      u,
		http:      &http.Client{},
		userAgent: "toolgate-go/" + Version,
		rng:       rand.New(rand.NewSource(time.Now().UnixNano())),
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.retry.MaxRetries < 0 {
		c.retry.MaxRetries = 0
	}
	if c.retry.MaxWait <= 0 {
		c.retry.MaxWait = defaultMaxWait
	}
	return c, nil
}

// CallOption configures one call, batch or stream.
type CallOption func(*callConfig)

type callConfig struct {
	timeout time.Duration
}

// Timeout lowers the call's deadline on the server (X-Request-Timeout-Ms); the server
// never raises it above the tool's own. When the server's deadline passes, the answer
// is a 504 timeout and the tool's work stops. A context deadline is sent the same way;
// the earlier of the two applies.
func Timeout(d time.Duration) CallOption {
	return func(c *callConfig) { c.timeout = d }
}

// Tools lists the tools the client's key may call.
func (c *Client) Tools(ctx context.Context) ([]Tool, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: c.path("tools")})
	if err != nil {
		return nil, err
	}
	var out struct {
		Tools []Tool `json:"tools"`
	}
	if err := decodeBody(resp, &out); err != nil {
		return nil, err
	}
	return out.Tools, nil
}

// Tool describes one tool.
func (c *Client) Tool(ctx context.Context, name string) (*Tool, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: c.path("tools", name)})
	if err != nil {
		return nil, err
	}
	var out Tool
	if err := decodeBody(resp, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Call runs one tool with args (anything that marshals to a JSON object; nil is {}).
func (c *Client) Call(ctx context.Context, tool string, args any, opts ...CallOption) (*CallResult, error) {
	body, err := marshalArgs(args)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, request{
		method: http.MethodPost, path: c.path("tools", tool), body: body,
		header: timeoutHeader(ctx, opts),
	})
	if err != nil {
		return nil, err
	}
	var out CallResult
	if err := decodeBody(resp, &out); err != nil {
		return nil, err
	}
	out.TraceID = resp.Header.Get(headerTraceID)
	return &out, nil
}

// BatchOptions are a batch's mode (default FailFast) and deadline for the whole batch.
type BatchOptions struct {
	Mode    Mode
	Timeout time.Duration
}

// Execute runs calls concurrently as one batch. When the batch ran, the result is
// returned whatever its status: in fail_fast mode a failure cancels the siblings still
// running, and the result's Status, Success and Err tell. An error is returned when
// the batch was refused as a whole (no key, a malformed batch, ...).
func (c *Client) Execute(ctx context.Context, calls []BatchCall, opts *BatchOptions) (*BatchResult, error) {
	body, err := batchBody(calls, opts)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, request{
		method: http.MethodPost, path: c.path("tools", "execute"), body: body,
		header: timeoutHeader(ctx, nil), batch: true,
	})
	if err != nil {
		return nil, err
	}
	var out BatchResult
	if err := decodeBody(resp, &out); err != nil {
		return nil, err
	}
	if out.Data == nil {
		return nil, fmt.Errorf("toolgate: a %d batch answer without data", resp.StatusCode)
	}
	out.Status = resp.StatusCode
	out.TraceID = resp.Header.Get(headerTraceID)
	return &out, nil
}

// Stream runs one tool and streams its progress, result and the final done event as
// Server-Sent Events. A call refused before it starts (no key, no scope, unknown
// tool, ...) is an *Error here; after that every outcome is an event. Close the
// stream when done with it: closing it early cancels the call on the server.
func (c *Client) Stream(ctx context.Context, tool string, args any, opts ...CallOption) (*Stream, error) {
	body, err := marshalArgs(args)
	if err != nil {
		return nil, err
	}
	return c.openStream(ctx, c.path("tools", tool, "stream"), body, timeoutHeader(ctx, opts))
}

// StreamExecute runs a batch and streams its events: results in completion order.
func (c *Client) StreamExecute(ctx context.Context, calls []BatchCall, opts *BatchOptions) (*Stream, error) {
	body, err := batchBody(calls, opts)
	if err != nil {
		return nil, err
	}
	return c.openStream(ctx, c.path("tools", "execute", "stream"), body, timeoutHeader(ctx, nil))
}

func (c *Client) openStream(ctx context.Context, path string, body []byte, h http.Header) (*Stream, error) {
	resp, err := c.send(ctx, request{method: http.MethodPost, path: path, body: body, header: h, stream: true})
	if err != nil {
		return nil, err
	}
	if mt := mediaType(resp); mt != "text/event-stream" {
		_, rerr := readAllClose(resp.Body, maxErrorBody)
		if rerr != nil {
			return nil, fmt.Errorf("toolgate: a stream answered as %q: %w", mt, rerr)
		}
		return nil, fmt.Errorf("toolgate: a stream answered as %q, not text/event-stream", mt)
	}
	return newStream(resp.Body, resp.Header.Get(headerTraceID)), nil
}

// === transport ===

type request struct {
	method string
	path   string
	body   []byte
	header http.Header
	batch  bool // a non-2xx application/json answer is a batch that ran
	stream bool
}

// send makes the request (again, when the retry policy says so) and returns the
// accepted response with its body unread, or the error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		if r.batch && mediaType(resp) == "application/json" {
			return resp, nil
		}
		apiErr, err := readError(resp)
		if err != nil {
			return nil, err
		}
		if attempt >= c.retry.MaxRetries || !apiErr.Retryable() || apiErr.Code == "" {
			return nil, apiErr
		}
		wait, ok := c.retryWait(apiErr, attempt)
		if !ok {
			return nil, apiErr
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("toolgate: waiting to retry after %v: %w", apiErr, err)
		}
	}
}

func (c *Client) once(ctx context.Context, r request) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base.Scheme+"://"+c.base.Host+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("toolgate: %w", err)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if c.key != "" {
		req.Header.Set(headerKey, c.key)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("toolgate: %w", err)
	}
	return resp, nil
}

// retryWait is how long to wait before attempt+1, and whether to retry at all.
func (c *Client) retryWait(e *Error, attempt int) (time.Duration, bool) {
	if e.RetryAfter > 0 {
		return e.RetryAfter, e.RetryAfter <= c.retry.MaxWait
	}
	d := baseBackoff << uint(attempt)
	if d <= 0 || d > c.retry.MaxWait {
		d = c.retry.MaxWait
	}
	c.mu.Lock()
	jitter := time.Duration(c.rng.Int63n(int64(d/2) + 1))
	c.mu.Unlock()
	return d/2 + jitter, true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// path joins the base path, /api/v1 and the escaped segments.
func (c *Client) path(segments ...string) string {
	var b strings.Builder
	b.WriteString(c.base.EscapedPath())
	b.WriteString("/api/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// timeoutHeader is X-Request-Timeout-Ms: the earlier of the Timeout option and the
// context's deadline, in whole milliseconds (at least 1).
func timeoutHeader(ctx context.Context, opts []CallOption) http.Header {
	var cfg callConfig
	for _, o := range opts {
		o(&cfg)
	}
	d := cfg.timeout
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); d <= 0 || left < d {
			d = left
		}
	}
	if d <= 0 {
		if _, ok := ctx.Deadline(); !ok {
			return nil
		}
		d = time.Millisecond // the context is about to end anyway
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return http.Header{headerTimeout: []string{strconv.FormatInt(int64(ms), 10)}}
}

func marshalArgs(args any) ([]byte, error) {
	if args == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("toolgate: encoding the arguments: %w", err)
	}
	if bytes.Equal(b, []byte("null")) {
		return []byte("{}"), nil
	}
	return b, nil
}

func batchBody(calls []BatchCall, opts *BatchOptions) ([]byte, error) {
	body := struct {
		Calls     []BatchCall `json:"calls"`
		Mode      Mode        `json:"mode,omitempty"`
		TimeoutMS int64       `json:"timeout_ms,omitempty"`
	}{Calls: calls}
	if body.Calls == nil {
		body.Calls = []BatchCall{}
	}
	if opts != nil {
		body.Mode = opts.Mode
		if opts.Timeout > 0 {
			body.TimeoutMS = int64((opts.Timeout + time.Millisecond - 1) / time.Millisecond)
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("toolgate: encoding the batch: %w", err)
	}
	return b, nil
}

func mediaType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt
}

// readAllClose reads at most limit bytes of body and closes it.
func readAllClose(body io.ReadCloser, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit))
	if cerr := body.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return b, err
}

// decodeBody reads a JSON answer into v and closes the body.
func decodeBody(resp *http.Response, v any) error {
	b, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("toolgate: reading the answer: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("toolgate: decoding the %d answer: %w", resp.StatusCode, err)
	}
	return nil
}

// readError turns a non-2xx answer into an *Error (the second result is a failure to
// read the answer at all).
func readError(resp *http.Response) (*Error, error) {
	b, err := readAllClose(resp.Body, maxErrorBody)
	if err != nil {
		return nil, fmt.Errorf("toolgate: reading the %d answer: %w", resp.StatusCode, err)
	}
	e := &Error{}
	mt := mediaType(resp)
	decoded := false
	if mt == problemMimeType || mt == "application/json" {
		decoded = json.Unmarshal(b, e) == nil && e.Code != ""
	}
	if !decoded {
		detail := strings.TrimSpace(string(b))
		if len(detail) > 512 {
			detail = detail[:512] + "..."
		}
		e = &Error{Title: http.StatusText(resp.StatusCode), Detail: detail}
	}
	e.Status = resp.StatusCode
	if e.TraceID == "" {
		e.TraceID = resp.Header.Get(headerTraceID)
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e, nil
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// errStreamEnded is returned by Stream.Err when the stream ended before its done event.
var errStreamEnded = errors.New("toolgate: the stream ended before its done event")

package toolgate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// Code is the stable machine-readable code of a toolgate problem document.
type Code string

// The codes of the toolgate HTTP contract, v1.
const (
	CodeInvalidJSON      Code = "invalid_json"      // 400: the body is not a JSON object
	CodeInvalidArguments Code = "invalid_arguments" // 422: see Error.Errors
	CodeUnauthorized     Code = "unauthorized"      // 401: no key
	CodeForbidden        Code = "forbidden"         // 403: unknown key, or no scope for the tool
	CodeToolNotFound     Code = "tool_not_found"    // 404
	CodePayloadTooLarge  Code = "payload_too_large" // 413
	CodeRateLimited      Code = "rate_limited"      // 429: the key's rate limit; see Error.RetryAfter
	CodeOverloaded       Code = "overloaded"        // 429 (the tool's queue) or 503 (the server)
	CodeTimeout          Code = "timeout"           // 504: the call's deadline passed
	CodeCircuitOpen      Code = "circuit_open"      // 503: the tool's circuit breaker is open
	CodeUpstreamError    Code = "upstream_error"    // 502: the tool's dependency failed
	CodeToolError        Code = "tool_error"        // 500: the tool reported failure
	CodeCancelled        Code = "cancelled"         // 499: batch and stream entries only

	// Outside the tool contract.
	CodeNotFound         Code = "not_found"          // 404: no such route
	CodeMethodNotAllowed Code = "method_not_allowed" // 405
	CodeInternalError    Code = "internal_error"     // 500: a bug in the server
)

// FieldError is one entry of an invalid_arguments problem: an RFC 6901 pointer into the
// arguments ("" for the object itself) and what is wrong there.
type FieldError struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// Error is a toolgate problem document (RFC 9457): every non-2xx answer of the server,
// and the error of a failed batch or stream entry. Use errors.As to get at it:
//
//	var e *toolgate.Error
//	if errors.As(err, &e) && e.Code == toolgate.CodeRateLimited { ... e.RetryAfter ... }
//
// An answer that is not a problem document (from a proxy, say) is an Error too, with
// the HTTP status, an empty Code and the start of the body as Detail.
type Error struct {
	Status  int          // HTTP status (499 for cancelled entries)
	Code    Code         // the contract's code; empty when the answer was no problem document
	Type    string       // a URN made from the code
	Title   string       // short, human-readable
	Detail  string       // what happened
	Tool    string       // the tool, when a tool call failed
	TraceID string       // the request's trace id (also in the X-Trace-Id header)
	Errors  []FieldError // for invalid_arguments
	// RetryAfter is how long the server asks to wait before trying again (from the
	// Retry-After header, or the problem's retry_after_s); zero when it did not say.
	RetryAfter time.Duration
}

// problemJSON is the wire form of Error.
type problemJSON struct {
	Type        string       `json:"type,omitempty"`
	Title       string       `json:"title,omitempty"`
	Status      int          `json:"status"`
	Detail      string       `json:"detail,omitempty"`
	Code        Code         `json:"code"`
	Tool        string       `json:"tool,omitempty"`
	TraceID     string       `json:"trace_id,omitempty"`
	Errors      []FieldError `json:"errors,omitempty"`
	RetryAfterS *float64     `json:"retry_after_s,omitempty"`
}

// UnmarshalJSON reads a problem document.
func (e *Error) UnmarshalJSON(b []byte) error {
	var p problemJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = Error{
		Status:  p.Status,
		Code:    p.Code,
		Type:    p.Type,
		Title:   p.Title,
		Detail:  p.Detail,
		Tool:    p.Tool,
		TraceID: p.TraceID,
		Errors:  p.Errors,
	}
	if p.RetryAfterS != nil && *p.RetryAfterS > 0 && !math.IsInf(*p.RetryAfterS, 0) {
		e.RetryAfter = time.Duration(*p.RetryAfterS * float64(time.Second))
	}
	return nil
}

// MarshalJSON writes the problem document.
func (e *Error) MarshalJSON() ([]byte, error) {
	p := problemJSON{
		Type:    e.Type,
		Title:   e.Title,
		Status:  e.Status,
		Detail:  e.Detail,
		Code:    e.Code,
		Tool:    e.Tool,
		TraceID: e.TraceID,
		Errors:  e.Errors,
	}
	if e.RetryAfter > 0 {
		s := e.RetryAfter.Seconds()
		p.RetryAfterS = &s
	}
	return json.Marshal(p)
}

// Error formats the problem as "toolgate: 429 rate_limited: detail (trace_id ...)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("toolgate: ")
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(string(e.Code))
	}
	switch {
	case e.Detail != "":
		b.WriteString(": ")
		b.WriteString(e.Detail)
	case e.Title != "":
		b.WriteString(": ")
		b.WriteString(e.Title)
	default:
		if t := http.StatusText(e.Status); t != "" {
			b.WriteString(": ")
			b.WriteString(t)
		}
	}
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "; %q: %s", fe.Pointer, fe.Message)
	}
	if e.TraceID != "" {
		b.WriteString(" (trace_id ")
		b.WriteString(e.TraceID)
		b.WriteString(")")
	}
	return b.String()
}

// Retryable reports whether the request was refused without running and may succeed
// later: 429 (rate_limited, overloaded) and 503 (overloaded, circuit_open).
func (e *Error) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// IsCode reports whether err is (or wraps) an *Error with the given code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

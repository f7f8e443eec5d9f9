package toolgate

import (
	"encoding/json"
	"errors"
)

// Tool describes one tool, as GET /api/v1/tools lists it.
type Tool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	Annotations  Annotations     `json:"annotations"`
	TimeoutMS    int64           `json:"timeout_ms"`
}

// Annotations are hints about a tool's behaviour.
type Annotations struct {
	ReadOnly    bool `json:"read_only"`
	Idempotent  bool `json:"idempotent"`
	Destructive bool `json:"destructive"`
}

// CallResult is the answer to a successful call.
type CallResult struct {
	Tool       string          `json:"tool"`
	Output     json.RawMessage `json:"output"`
	DurationMS int64           `json:"duration_ms"`
	// TraceID is the X-Trace-Id response header.
	TraceID string `json:"trace_id,omitempty"`
}

// Decode unmarshals the output into v.
func (r *CallResult) Decode(v any) error {
	return json.Unmarshal(r.Output, v)
}

// Mode is how a batch treats failures.
type Mode string

const (
	// FailFast (the default) cancels every sibling still running at the first failure.
	FailFast Mode = "fail_fast"
	// AllSettled waits for every call.
	AllSettled Mode = "all_settled"
)

// BatchCall is one call of a batch. ID defaults to the call's index ("0", "1", ...);
// nil Arguments are sent as {}.
type BatchCall struct {
	ID        string `json:"id,omitempty"`
	Tool      string `json:"tool"`
	Arguments any    `json:"arguments,omitempty"`
}

// BatchResult is the answer to a batch that ran. In fail_fast mode a failure ends the
// batch: then Status is that failure's HTTP status, Success is false and Error is the
// failure's problem; Err returns it.
type BatchResult struct {
	Status  int          `json:"status"`
	Success bool         `json:"success"`
	Data    []BatchEntry `json:"data"`
	Error   *Error       `json:"error,omitempty"`
	// TraceID is the X-Trace-Id response header.
	TraceID string `json:"trace_id,omitempty"`
}

// Err returns the failure that ended a fail_fast batch, or nil.
func (r *BatchResult) Err() error {
	if r.Error == nil {
		return nil
	}
	return r.Error
}

// BatchEntry is the outcome of one call of a batch (and a stream's result event):
// OK with Output, or not OK with Error (a cancelled sibling has CodeCancelled, 499).
type BatchEntry struct {
	ID         string          `json:"id"`
	Tool       string          `json:"tool"`
	OK         bool            `json:"ok"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      *Error          `json:"error,omitempty"`
	DurationMS int64           `json:"duration_ms"`
}

// Err returns the entry's error, or nil when it succeeded.
func (e *BatchEntry) Err() error {
	if e.OK {
		return nil
	}
	if e.Error == nil {
		return errors.New("toolgate: a failed entry without a problem document")
	}
	return e.Error
}

// Decode unmarshals the entry's output into v.
func (e *BatchEntry) Decode(v any) error {
	if err := e.Err(); err != nil {
		return err
	}
	return json.Unmarshal(e.Output, v)
}

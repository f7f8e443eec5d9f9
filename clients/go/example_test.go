package toolgate_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	toolgate "github.com/toolgate/toolgate-go"
)

// These examples are compiled by `go test` but not run: they need a server.

func Example() {
	c, err := toolgate.New("http://127.0.0.1:8080", toolgate.WithAPIKey(os.Getenv("TOOLGATE_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Call(ctx, "echo", map[string]any{"hello": "agents"})
	var e *toolgate.Error
	if errors.As(err, &e) {
		log.Fatalf("%s (%d): %s [trace %s]", e.Code, e.Status, e.Detail, e.TraceID)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(res.Output))
}

func ExampleClient_Execute() {
	c, err := toolgate.New("http://127.0.0.1:8080", toolgate.WithAPIKey(os.Getenv("TOOLGATE_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Execute(context.Background(), []toolgate.BatchCall{
		{ID: "slow", Tool: "sleep", Arguments: map[string]int{"ms": 10000}},
		{ID: "bad", Tool: "fail", Arguments: map[string]string{"message": "nope"}},
	}, &toolgate.BatchOptions{Mode: toolgate.FailFast})
	if err != nil {
		log.Fatal(err) // refused as a whole
	}
	for _, entry := range res.Data {
		fmt.Println(entry.ID, entry.OK, entry.Err()) // slow is cancelled (499)
	}
}

func ExampleClient_Stream() {
	c, err := toolgate.New("http://127.0.0.1:8080", toolgate.WithAPIKey(os.Getenv("TOOLGATE_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Stream(context.Background(), "sleep", map[string]int{"ms": 300})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			log.Print(err)
		}
	}()
	for s.Next() {
		switch ev := s.Event(); ev.Type {
		case toolgate.EventProgress:
			fmt.Println("progress", ev.Progress.Progress, ev.Progress.Message)
		case toolgate.EventResult:
			fmt.Println("result", ev.Result.ID, string(ev.Result.Output), ev.Result.Err())
		case toolgate.EventDone:
			fmt.Println("done", ev.Done.Success)
		}
	}
	if err := s.Err(); err != nil {
		log.Fatal(err)
	}
}

func ExampleWithRetry() {
	// Send refused requests (429, 503) up to 3 more times, honouring Retry-After up
	// to 10 s; a longer Retry-After returns the error at once.
	c, err := toolgate.New("http://127.0.0.1:8080",
		toolgate.WithAPIKey(os.Getenv("TOOLGATE_API_KEY")),
		toolgate.WithRetry(toolgate.RetryPolicy{MaxRetries: 3, MaxWait: 10 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Call(context.Background(), "run_database_query", map[string]string{"query": "SELECT 1"},
		toolgate.Timeout(2*time.Second))
	if toolgate.IsCode(err, toolgate.CodeRateLimited) {
		log.Print("still rate limited")
	}
}

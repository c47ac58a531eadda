package jira_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/jira"
)

func newClient(t *testing.T, h http.HandlerFunc) *jira.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := jira.New(srv.URL, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Retry = jira.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	return c
}

func TestClientHonoursRetryAfterOn429(t *testing.T) {
	var calls atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issues": []map[string]string{{"id": "1"}, {"id": "2"}}, "isLast": true})
	})
	p, err := c.SearchIDs(context.Background(), "project = A", "", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || len(p.IDs) != 2 || !p.IsLast {
		t.Fatalf("calls=%d page=%+v", calls.Load(), p)
	}
}

func TestClientGivesUpAfterMaxAttemptsOn5xx(t *testing.T) {
	var calls atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(503)
		w.Write([]byte(`{"errorMessages":["down for maintenance"]}`))
	})
	_, err := c.Fields(context.Background())
	if !jira.IsStatus(err, 503) || calls.Load() != 4 {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
	if !strings.Contains(err.Error(), "down for maintenance") {
		t.Fatalf("error lost Jira's message: %v", err)
	}
}

func TestClientDoesNotRetryClientErrors(t *testing.T) {
	var calls atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(400)
		w.Write([]byte(`{"errorMessages":["Error in the JQL Query: Expecting operator but got 'foo'."],"errors":{}}`))
	})
	err := c.CheckJQL(context.Background(), "project foo")
	var je *jira.Error
	if !errors.As(err, &je) || je.Status != 400 || calls.Load() != 1 || !strings.Contains(je.Error(), "Expecting operator") {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
}

func TestClientStopsWhenContextEnds(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(429)
	})
	c.Retry.MaxDelay = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := c.Fields(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBulkFetchKeepsRequestedOrderAndOmitsInvisible(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct{ IssueIdsOrKeys []string }
		json.NewDecoder(r.Body).Decode(&body)
		// Answer out of order and without "3" (not visible to the caller).
		w.Write([]byte(`{"issues":[{"id":"4","key":"A-4","fields":{}},{"id":"1","key":"A-1","fields":{"summary":"x"}},{"id":"2","key":"A-2","fields":{}}],"issueErrors":[]}`))
	})
	got, err := c.BulkFetch(context.Background(), []string{"1", "2", "3", "4"}, []string{"summary"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, is := range got {
		keys = append(keys, is.Key)
	}
	if strings.Join(keys, ",") != "A-1,A-2,A-4" {
		t.Fatalf("order = %v", keys)
	}
}

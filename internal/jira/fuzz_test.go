package jira

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// Jira's error bodies and Retry-After headers are outside input on every
// failed call: any body gives an *Error with the response's status, and any
// Retry-After a wait between zero and the cap.
func FuzzReadErrorAndRetryAfter(f *testing.F) {
	f.Add([]byte(`{"errorMessages":["Field 'x' does not exist"],"errors":{"jql":"bad"}}`), "5")
	f.Add([]byte(`{"errorMessages":"not a list"}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add([]byte{0xff, 0xfe}, "-1")
	f.Add([]byte(``), "99999999999999999999")
	c := &Client{Retry: DefaultRetry}
	f.Fuzz(func(t *testing.T, body []byte, retryAfter string) {
		err := readError(&http.Response{StatusCode: 418, Body: io.NopCloser(bytes.NewReader(body))})
		if e, ok := err.(*Error); !ok || e.Status != 418 {
			t.Fatalf("readError = %#v", err)
		}
		if d := c.retryAfter(retryAfter, 1); d < 0 || d > DefaultRetry.MaxDelay+time.Second {
			t.Fatalf("Retry-After %q → %s", retryAfter, d)
		}
	})
}

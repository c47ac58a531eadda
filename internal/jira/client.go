// Package jira is Ferry's client for the Jira Cloud REST API v3: the calls
// the connector needs (id enumeration, bulk hydration, changelogs, fields,
// users, app properties, license) and nothing more. It is polite by
// construction: 429 answers are retried after Retry-After, 5xx after a
// jittered exponential backoff, and every call stops when its context ends.
//
// It never logs or keeps response bodies: callers stream what they receive.
package jira

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Authorizer signs one outgoing request: a Connect JWT for the app's own
// calls, or an OAuth bearer token when acting as a user.
type Authorizer interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// Client talks to one Jira site as one principal.
type Client struct {
	base  *url.URL
	http  *http.Client
	auth  Authorizer
	Retry RetryPolicy
	// Limits, when set, paces every call by the tenant's standing with
	// Jira's rate limits (limits.go) and counts the points each costs.
	Limits *Tenant
}

type spendKey struct{}

type spendTag struct {
	label string
	res   *Reservation
}

// WithSpend labels the points of the calls made with ctx (for the admin
// page: a data source's id, or "app") and counts them against res, an
// export's reservation (nil: none).
func WithSpend(ctx context.Context, label string, res *Reservation) context.Context {
	return context.WithValue(ctx, spendKey{}, spendTag{label, res})
}

// charge records points spent by a call made with ctx.
func (c *Client) charge(ctx context.Context, points int) {
	c.record(ctx, "", points)
}

// chargeObjects records the objects a read to endpoint returned: its
// points, and what a call there costs (for pacing).
func (c *Client) chargeObjects(ctx context.Context, endpoint string, points int) {
	c.record(ctx, endpoint, points)
}

func (c *Client) record(ctx context.Context, endpoint string, points int) {
	if c.Limits == nil {
		return
	}
	tag, _ := ctx.Value(spendKey{}).(spendTag)
	if tag.label == "" {
		tag.label = "other"
	}
	c.Limits.spend(tag.label, endpoint, points, tag.res)
}

// RetryPolicy bounds how hard the client tries.
type RetryPolicy struct {
	MaxAttempts int           // total attempts per call, including the first
	BaseDelay   time.Duration // first 5xx backoff; doubles each attempt
	MaxDelay    time.Duration // cap for backoff and for Retry-After
}

// DefaultRetry suits interactive feeds: a few attempts, never a long stall.
var DefaultRetry = RetryPolicy{MaxAttempts: 6, BaseDelay: 200 * time.Millisecond, MaxDelay: 30 * time.Second}

// New returns a client for the site at baseURL. hc must come from the egress
// gate; auth decides whose view of Jira the calls see.
func New(baseURL string, hc *http.Client, auth Authorizer) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("jira: bad site URL")
	}
	return &Client{base: u, http: hc, auth: auth, Retry: DefaultRetry}, nil
}

// maxBody bounds one answer read whole: 100 issues with every field are a
// few megabytes at most.
const maxBody = 64 << 20

// Error is a non-2xx answer from Jira with its errorMessages, which are safe
// to show the user who made the request (they are about their own query).
type Error struct {
	Status   int
	Messages []string
	Fields   map[string]string
}

func (e *Error) Error() string {
	msgs := append([]string(nil), e.Messages...)
	for k, v := range e.Fields {
		msgs = append(msgs, k+": "+v)
	}
	if len(msgs) == 0 {
		return fmt.Sprintf("jira: HTTP %d", e.Status)
	}
	return fmt.Sprintf("jira: HTTP %d: %s", e.Status, strings.Join(msgs, "; "))
}

// IsStatus reports whether err is a Jira answer with the given status.
func IsStatus(err error, status int) bool {
	var je *Error
	return errors.As(err, &je) && je.Status == status
}

// do sends one call with retries and decodes a JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, out any) error {
	return c.doExpect(ctx, 0, method, path, query, body, out)
}

// doExpect is do for a call that reads at most maxObjects objects (0:
// unknown): while the quota is paced, a call in flight holds what it may
// cost.
func (c *Client) doExpect(ctx context.Context, maxObjects int, method, path string, query url.Values, body any, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	attempts := max(c.Retry.MaxAttempts, 1)
	endpoint := method + " " + path
	var lastErr error
	throttled := 0 // 429s answered; paced by Limits, they are not failed attempts
	for attempt := 1; attempt <= attempts; {
		var release func(*http.Response, time.Duration)
		if c.Limits != nil {
			var err error
			if release, err = c.Limits.acquire(ctx, endpoint, maxObjects); err != nil {
				return err
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(payload))
		if err != nil {
			if release != nil {
				release(nil, 0)
			}
			return err
		}
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.auth != nil {
			if err := c.auth.Authorize(ctx, req); err != nil {
				if release != nil {
					release(nil, 0)
				}
				return err
			}
		}
		start := time.Now()
		resp, err := c.http.Do(req)
		if release != nil {
			release(resp, time.Since(start))
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = fmt.Errorf("jira: %s %s: %w", method, path, unwrapURLError(err))
			if attempt == attempts || !sleep(ctx, c.backoff(attempt)) {
				break
			}
			attempt++
			continue
		}
		if resp.StatusCode == http.StatusTooManyRequests && c.Limits != nil && throttled < maxThrottled {
			// Limits has read the answer: the next acquire waits out the
			// pause (or fails with a QuotaError when it is too long).
			throttled++
			lastErr = readError(resp)
			continue
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			wait := c.backoff(attempt)
			if resp.StatusCode == http.StatusTooManyRequests {
				wait = c.retryAfter(resp.Header.Get("Retry-After"), attempt)
			} else {
				c.charge(ctx, 1)
			}
			lastErr = readError(resp)
			if attempt == attempts || !sleep(ctx, wait) {
				break
			}
			attempt++
			continue
		}
		c.charge(ctx, 1) // the base point of every answered request
		if resp.StatusCode >= 300 {
			return readError(resp)
		}
		defer resp.Body.Close()
		if out == nil {
			io.Copy(io.Discard, resp.Body)
			return nil
		}
		if raw, ok := out.(*[]byte); ok {
			// The caller parses the body itself (the paging fast path).
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
			if err != nil {
				return fmt.Errorf("jira: %s %s: %w", method, path, err)
			}
			*raw = b
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("jira: %s %s: malformed answer: %w", method, path, err)
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return lastErr
}

// maxThrottled bounds the 429s one call absorbs while paced by Limits.
const maxThrottled = 30

// unwrapURLError drops the URL (which may carry a jwt query parameter) from
// transport errors.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func readError(resp *http.Response) error {
	defer resp.Body.Close()
	var body struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &body)
	return &Error{Status: resp.StatusCode, Messages: body.ErrorMessages, Fields: body.Errors}
}

// backoff is exponential with full jitter, so many exports hitting the same
// overloaded site spread out instead of retrying in lockstep.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.Retry.BaseDelay << (attempt - 1)
	if d <= 0 || d > c.Retry.MaxDelay {
		d = c.Retry.MaxDelay
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter honours Jira's Retry-After (seconds or HTTP date), capped.
func (c *Client) retryAfter(v string, attempt int) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		if s >= int(c.Retry.MaxDelay/time.Second) { // also before a huge value overflows to a negative wait
			return c.Retry.MaxDelay
		}
		return min(time.Duration(s)*time.Second+rand.N(100*time.Millisecond), c.Retry.MaxDelay)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), c.Retry.MaxDelay)
	}
	return c.backoff(attempt)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

package privacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// What the personal data reporting API answers, read strictly: it comes
// from outside, so every parser here has a fuzz target (answer_fuzz_test.go).

// Status is what Atlassian says of a reported account.
type Status string

const (
	StatusClosed  Status = "closed"  // the account is closed: erase everything linked to it
	StatusUpdated Status = "updated" // the profile changed since updatedAt: refresh what is cached
)

// Answer is one account's status in a 200 answer.
type Answer struct {
	AccountID string
	Status    Status
}

// maxAnswerBody bounds a report answer: 90 accounts of about 100 bytes.
const maxAnswerBody = 256 << 10

// ErrAnswer: the answer is not what the API documents.
var ErrAnswer = errors.New("privacy: malformed report-accounts answer")

// parseAnswer reads a 200 answer, {"accounts":[{"accountId":…,"status":…}]},
// and keeps the answers about accounts in asked, with a status Ferry knows.
// ignored counts the rest (another account, an unknown status, a repeat).
func parseAnswer(body []byte, asked map[string]bool) (out []Answer, ignored int, err error) {
	if len(body) > maxAnswerBody {
		return nil, 0, fmt.Errorf("%w: larger than %d bytes", ErrAnswer, maxAnswerBody)
	}
	var a struct {
		Accounts []struct {
			AccountID string `json:"accountId"`
			Status    string `json:"status"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrAnswer, err)
	}
	seen := map[string]bool{}
	for _, x := range a.Accounts {
		st := Status(strings.ToLower(x.Status))
		if !asked[x.AccountID] || seen[x.AccountID] || (st != StatusClosed && st != StatusUpdated) {
			ignored++
			continue
		}
		seen[x.AccountID] = true
		out = append(out, Answer{AccountID: x.AccountID, Status: st})
	}
	return out, ignored, nil
}

// Cycle periods: Atlassian's default is seven days; whatever a header says,
// Ferry reports an account no more often than once an hour and at least once
// every thirty days.
const (
	DefaultCyclePeriod = 7 * 24 * time.Hour
	minCyclePeriod     = time.Hour
	maxCyclePeriod     = 30 * 24 * time.Hour
)

// parseCyclePeriod reads the Cycle-Period header: a number of seconds (or
// an ISO 8601 duration of days, hours, minutes or seconds such as P7D),
// clamped to [1 h, 30 d]. ok is false for a missing or unreadable header.
func parseCyclePeriod(h string) (d time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n <= 0 {
			return 0, false
		}
		d = clampDuration(n, time.Second)
	} else {
		d, ok = parseISODuration(h)
		if !ok {
			return 0, false
		}
	}
	return min(max(d, minCyclePeriod), maxCyclePeriod), true
}

// clampDuration is n units without overflowing.
func clampDuration(n int64, unit time.Duration) time.Duration {
	if n > int64(maxCyclePeriod/unit) {
		return maxCyclePeriod
	}
	return time.Duration(n) * unit
}

// parseISODuration reads PnD, PTnH, PTnM, PTnS (one component).
func parseISODuration(s string) (time.Duration, bool) {
	s = strings.ToUpper(s)
	var unit time.Duration
	switch {
	case strings.HasPrefix(s, "PT") && strings.HasSuffix(s, "H"):
		s, unit = s[2:len(s)-1], time.Hour
	case strings.HasPrefix(s, "PT") && strings.HasSuffix(s, "M"):
		s, unit = s[2:len(s)-1], time.Minute
	case strings.HasPrefix(s, "PT") && strings.HasSuffix(s, "S"):
		s, unit = s[2:len(s)-1], time.Second
	case strings.HasPrefix(s, "P") && strings.HasSuffix(s, "D"):
		s, unit = s[1:len(s)-1], 24*time.Hour
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return clampDuration(n, unit), true
}

// Retry-After bounds: an answer without one waits a minute; none waits
// longer than a day.
const (
	defaultRetryAfter = time.Minute
	maxRetryAfter     = 24 * time.Hour
)

// parseRetryAfter reads Retry-After as seconds or an HTTP date (relative to
// now), within [0, 24 h]; a missing or unreadable header means a minute.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return defaultRetryAfter
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return defaultRetryAfter
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return defaultRetryAfter
}

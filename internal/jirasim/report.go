package jirasim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Personal data reporting: an app tells Atlassian which accounts it stores
// data of (POST /rest/atlassian-connect/latest/report-accounts, signed as the
// app), in batches of at most 90, and learns which of them were closed
// ("closed": erase them) or changed since the updatedAt it sent ("updated").
// 204 means nothing to do. Every answer carries a Cycle-Period header, the
// seconds the app should wait before reporting an account again; calling
// too often is answered 429 with Retry-After.
//
// For tests the answers can be scripted (SetReportAnswer, ThrottleReports,
// SetReportCyclePeriod, or /_sim/report-accounts), and every call is kept
// (ReportCalls), so a test can check batching and timing against what the
// site saw rather than what the app says it did.

// DefaultReportCyclePeriod is what the sim asks for unless told otherwise.
const DefaultReportCyclePeriod = 7 * 24 * time.Hour

const (
	reportBurst    = 5
	reportInterval = time.Second // one more call allowed per interval
)

// ReportCall is one report-accounts request as the site saw it.
type ReportCall struct {
	At        time.Time `json:"at"`
	AddonKey  string    `json:"addon_key"`
	Accounts  []string  `json:"accounts"`   // accountIds in the order sent
	UpdatedAt []string  `json:"updated_at"` // the updatedAt sent with each
	Status    int       `json:"status"`     // what the site answered
}

type reportScript struct {
	mu         sync.Mutex
	answers    map[string]string // accountId → "closed", "updated" or "" (as the data says)
	throttle   int               // the next calls answered 429
	retryAfter time.Duration
	cycle      time.Duration // 0: DefaultReportCyclePeriod
	calls      []ReportCall
}

// SetReportAnswer scripts the status reported for an account: "closed",
// "updated", "none" (nothing to do), or "" to go back to what the site's
// data says (closed accounts closed, profiles changed since updatedAt
// updated).
func (s *Sim) SetReportAnswer(accountID, status string) error {
	switch status {
	case "closed", "updated", "none", "":
	default:
		return fmt.Errorf("jirasim: report status %q is not closed, updated, none or empty", status)
	}
	r := &s.report
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answers == nil {
		r.answers = map[string]string{}
	}
	if status == "" {
		delete(r.answers, accountID)
	} else {
		r.answers[accountID] = status
	}
	return nil
}

// ThrottleReports answers the next n report calls 429 with Retry-After.
func (s *Sim) ThrottleReports(n int, retryAfter time.Duration) {
	r := &s.report
	r.mu.Lock()
	r.throttle, r.retryAfter = max(n, 0), retryAfter
	r.mu.Unlock()
}

// SetReportCyclePeriod sets the Cycle-Period the site asks for (0: the
// default of seven days).
func (s *Sim) SetReportCyclePeriod(d time.Duration) {
	r := &s.report
	r.mu.Lock()
	r.cycle = d
	r.mu.Unlock()
}

// ReportCalls returns every report call so far, oldest first.
func (s *Sim) ReportCalls() []ReportCall {
	r := &s.report
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ReportCall, len(r.calls))
	for i, c := range r.calls {
		c.Accounts = append([]string(nil), c.Accounts...)
		c.UpdatedAt = append([]string(nil), c.UpdatedAt...)
		out[i] = c
	}
	return out
}

// ResetReportCalls forgets the calls seen so far.
func (s *Sim) ResetReportCalls() {
	r := &s.report
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

func (r *reportScript) cyclePeriod() time.Duration {
	if r.cycle > 0 {
		return r.cycle
	}
	return DefaultReportCyclePeriod
}

func (s *Sim) handleReportAccounts(w http.ResponseWriter, r *http.Request, p *principal) {
	call := ReportCall{At: s.now(), AddonKey: p.addonKey}
	rs := &s.report
	record := func(status int) {
		call.Status = status
		rs.mu.Lock()
		rs.calls = append(rs.calls, call)
		rs.mu.Unlock()
	}
	if p.kind != "app" {
		jiraError(w, http.StatusForbidden, "Only apps may report accounts.")
		return
	}
	var req struct {
		Accounts []struct {
			AccountID string `json:"accountId"`
			UpdatedAt string `json:"updatedAt"`
		} `json:"accounts"`
	}
	if !decodeBody(w, r, &req) {
		record(http.StatusBadRequest)
		return
	}
	for _, a := range req.Accounts {
		call.Accounts = append(call.Accounts, a.AccountID)
		call.UpdatedAt = append(call.UpdatedAt, a.UpdatedAt)
	}
	rs.mu.Lock()
	cycle := rs.cyclePeriod()
	throttled, retryAfter := rs.throttle > 0, rs.retryAfter
	if throttled {
		rs.throttle--
	}
	rs.mu.Unlock()
	w.Header().Set("Cycle-Period", strconv.FormatInt(int64(cycle/time.Second), 10))
	wait := retryAfter
	if !throttled {
		var ok bool
		ok, _, _, wait = s.limits.take("report:"+p.addonKey, float64(time.Second)/float64(reportInterval), reportBurst, s.now())
		throttled = !ok
	}
	if throttled {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		jiraError(w, http.StatusTooManyRequests, "Too many requests: report accounts less often.")
		record(http.StatusTooManyRequests)
		return
	}
	if len(req.Accounts) == 0 || len(req.Accounts) > maxReportBatch {
		fieldErrors(w, http.StatusBadRequest, map[string]string{"accounts": fmt.Sprintf("Report between 1 and %d accounts per request.", maxReportBatch)})
		record(http.StatusBadRequest)
		return
	}
	type result struct {
		AccountID string `json:"accountId"`
		Status    string `json:"status"`
	}
	var out []result
	for k, a := range req.Accounts {
		at, err := time.Parse(time.RFC3339, a.UpdatedAt)
		if a.AccountID == "" || err != nil {
			fieldErrors(w, http.StatusBadRequest, map[string]string{fmt.Sprintf("accounts[%d]", k): "accountId and an ISO 8601 updatedAt are required."})
			record(http.StatusBadRequest)
			return
		}
		rs.mu.Lock()
		scripted := rs.answers[a.AccountID]
		rs.mu.Unlock()
		i, known := s.data.byAcct[a.AccountID]
		switch {
		case scripted == "closed" || scripted == "updated":
			out = append(out, result{a.AccountID, scripted})
		case scripted == "none":
		case !known || s.data.users[i].Closed:
			out = append(out, result{a.AccountID, "closed"})
		case s.data.users[i].Updated.After(at):
			out = append(out, result{a.AccountID, "updated"})
		}
	}
	if len(out) == 0 {
		w.WriteHeader(http.StatusNoContent)
		record(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
	record(http.StatusOK)
}

// reportControlRoutes serves /_sim/report-accounts: GET lists the calls and
// the script; POST changes the script.
func (s *Sim) reportControlRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/report-accounts", func(w http.ResponseWriter, r *http.Request) {
		rs := &s.report
		rs.mu.Lock()
		answers := map[string]string{}
		for k, v := range rs.answers {
			answers[k] = v
		}
		state := map[string]any{"cycle_period_seconds": int64(rs.cyclePeriod() / time.Second), "throttle": rs.throttle,
			"retry_after_seconds": int64(rs.retryAfter / time.Second), "answers": answers}
		rs.mu.Unlock()
		calls := s.ReportCalls()
		if calls == nil {
			calls = []ReportCall{}
		}
		state["calls"] = calls
		writeJSON(w, 200, state)
	})
	m.HandleFunc("POST /_sim/report-accounts", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Answers            map[string]string `json:"answers"`
			Throttle           *int              `json:"throttle"`
			RetryAfterSeconds  int               `json:"retry_after_seconds"`
			CyclePeriodSeconds *int64            `json:"cycle_period_seconds"`
			ResetCalls         bool              `json:"reset_calls"`
		}
		if !ctlDecode(w, r, &req) {
			return
		}
		for id, st := range req.Answers {
			if err := s.SetReportAnswer(id, st); err != nil {
				ctlFail(w, err)
				return
			}
		}
		if req.Throttle != nil {
			s.ThrottleReports(*req.Throttle, time.Duration(req.RetryAfterSeconds)*time.Second)
		}
		if req.CyclePeriodSeconds != nil {
			s.SetReportCyclePeriod(time.Duration(*req.CyclePeriodSeconds) * time.Second)
		}
		if req.ResetCalls {
			s.ResetReportCalls()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

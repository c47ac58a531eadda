package jirasim

import (
	"strconv"
	"testing"
	"time"
)

// TestReportAccountsScriptedThroughTheControlAPI: the answers, throttling
// and cycle period a test scripts through /_sim/report-accounts are what an
// app gets, and every call is kept with its accounts and status.
func TestReportAccountsScriptedThroughTheControlAPI(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Users: 12, Seed: 7})
	in := newTestApp(t, srv.URL, "gdpr-script").install(s)
	clock := &fakeClock{t: time.Now()}
	s.setClock(clock.now)
	path := "/rest/atlassian-connect/latest/report-accounts"
	var open []User
	for _, u := range s.Users() {
		if !u.Closed {
			open = append(open, u)
		}
	}
	if len(open) < 3 {
		t.Fatalf("need three open accounts, have %d", len(open))
	}
	now := clock.now().UTC().Format(time.RFC3339)
	accounts := []map[string]string{{"accountId": open[0].AccountID, "updatedAt": now},
		{"accountId": open[1].AccountID, "updatedAt": now}, {"accountId": open[2].AccountID, "updatedAt": now}}
	report := func() result {
		return call(t, srv.URL, "POST", path, appJWT(t, in, "POST", path), map[string]any{"accounts": accounts})
	}
	// Unscripted: open accounts not changed since now → 204, with the default cycle.
	r := report().status(t, 204)
	if got := r.resp.Header.Get("Cycle-Period"); got != strconv.Itoa(int(DefaultReportCyclePeriod/time.Second)) {
		t.Fatalf("Cycle-Period %q", got)
	}
	// Scripted: one closed, one updated, a shorter cycle.
	call(t, srv.URL, "POST", "/_sim/report-accounts", "", map[string]any{
		"answers":              map[string]string{open[0].AccountID: "closed", open[1].AccountID: "updated"},
		"cycle_period_seconds": 3600,
	}).status(t, 204)
	var out struct {
		Accounts []struct{ AccountID, Status string }
	}
	r = report().status(t, 200)
	r.decode(t, &out)
	got := map[string]string{}
	for _, a := range out.Accounts {
		got[a.AccountID] = a.Status
	}
	if len(got) != 2 || got[open[0].AccountID] != "closed" || got[open[1].AccountID] != "updated" || r.resp.Header.Get("Cycle-Period") != "3600" {
		t.Fatalf("scripted answer %v, Cycle-Period %q", got, r.resp.Header.Get("Cycle-Period"))
	}
	// Throttled twice with Retry-After, then answered again.
	call(t, srv.URL, "POST", "/_sim/report-accounts", "", map[string]any{"throttle": 2, "retry_after_seconds": 42}).status(t, 204)
	for i := 0; i < 2; i++ {
		if r := report().status(t, 429); r.resp.Header.Get("Retry-After") != "42" {
			t.Fatalf("Retry-After %q", r.resp.Header.Get("Retry-After"))
		}
	}
	clock.advance(2 * reportInterval)
	report().status(t, 200)
	// Back to the data: "none" silences an account, "" restores it.
	call(t, srv.URL, "POST", "/_sim/report-accounts", "", map[string]any{"answers": map[string]string{open[0].AccountID: "none", open[1].AccountID: ""}}).status(t, 204)
	report().status(t, 204)
	call(t, srv.URL, "POST", "/_sim/report-accounts", "", map[string]any{"answers": map[string]string{open[0].AccountID: "gone"}}).status(t, 400)

	var state struct {
		Calls []ReportCall `json:"calls"`
	}
	call(t, srv.URL, "GET", "/_sim/report-accounts", "", nil).status(t, 200).decode(t, &state)
	want := []int{204, 200, 429, 429, 200, 204}
	if len(state.Calls) != len(want) {
		t.Fatalf("%d calls recorded, want %d: %+v", len(state.Calls), len(want), state.Calls)
	}
	for i, c := range state.Calls {
		if c.Status != want[i] || len(c.Accounts) != 3 || c.Accounts[0] != open[0].AccountID || c.AddonKey != "gdpr-script" {
			t.Errorf("call %d: %+v, want status %d", i, c, want[i])
		}
	}
	call(t, srv.URL, "POST", "/_sim/report-accounts", "", map[string]any{"reset_calls": true}).status(t, 204)
	if n := len(s.ReportCalls()); n != 0 {
		t.Fatalf("%d calls after reset", n)
	}
}

package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/errortrack"
	"ferry/internal/staff"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/web/console"
)

const (
	errKey   = "0123456789abcdef0123456789abcdef"
	errKey2  = "fedcba9876543210fedcba9876543210"
	email    = "ada.lovelace@example.org"
	jwt      = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI1NTcwNTgifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	upstream = "sentry.example.com/ (project 42)"
	tenantID = "ten_0123456789abcdef0123456789abcdef"
)

// sent is one event the test sent through the real ingest, with what the
// console should show of it.
type sent struct {
	n                       int // its case number, in its message
	project, release, level string
	errType                 string
	user, forwarded         bool
	at                      time.Time
}

// ingest serves error tracking's real ingest over the env's store: one
// tracker that forwards (project 1) and one that keeps events locally
// (project 2), as a configuration change between two events would.
func ingest(t *testing.T, e *env) (post func(project, key string, ev map[string]any)) {
	t.Helper()
	ps, err := errortrack.LoadPseudonyms(context.Background(), e.db, e.ring.KEK())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id, key string, forward bool) *httptest.Server {
		tr := errortrack.New(errortrack.Options{Store: e.errors, Projects: []errortrack.Project{{ID: id, PublicKey: key}},
			Forward: forward, Pseudonyms: ps})
		mux := http.NewServeMux()
		tr.Routes(mux)
		s := httptest.NewServer(mux)
		t.Cleanup(s.Close)
		return s
	}
	servers := map[string]*httptest.Server{"1": mk("1", errKey, true), "2": mk("2", errKey2, false)}
	return func(project, key string, ev map[string]any) {
		t.Helper()
		payload, _ := json.Marshal(ev)
		body := fmt.Sprintf("{\"event_id\":%q}\n{\"type\":\"event\"}\n%s\n", ev["event_id"], payload)
		r, err := http.Post(servers[project].URL+"/errors/api/"+project+"/envelope/?sentry_key="+key, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("ingest answered %d", r.StatusCode)
		}
	}
}

// browserEvent is what @sentry/browser sends from an app page: an
// exception with two frames (the oldest call first), the page's URL and
// user agent, and — from a tenant's page — the tenant tag and the user.
func browserEvent(s sent, message string) map[string]any {
	ev := map[string]any{
		"event_id": fmt.Sprintf("%032x", s.n), "platform": "javascript", "level": s.level, "release": s.release, "environment": "production",
		"exception": map[string]any{"values": []any{map[string]any{
			"type": s.errType, "value": message, "mechanism": map[string]any{"type": "onerror", "handled": false},
			"stacktrace": map[string]any{"frames": []any{
				map[string]any{"filename": "https://ferry.example.com/static/app.js?jwt=" + jwt, "function": "outer", "lineno": 10, "colno": 3, "in_app": true},
				map[string]any{"filename": "https://ferry.example.com/static/app.js", "function": fmt.Sprintf("inner%d", s.n), "lineno": 42, "colno": 7, "in_app": true},
			}}}}},
		"request": map[string]any{"url": "https://ferry.example.com/app/data-sources?jwt=" + jwt,
			"headers": map[string]any{"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}},
	}
	if s.user {
		ev["tags"] = map[string]any{"ferry_tenant": tenantID, "page": "data-sources"}
		ev["user"] = map[string]any{"email": email, "id": "5b10a2844c20165700ede21g"}
	}
	return ev
}

var (
	rowRE   = regexp.MustCompile(`<tr data-id="(\d+)">.*?case-(\d+)`)
	olderRE = regexp.MustCompile(`href="/console/errors\?([^"]+)" id="older"`)
)

// walk reads every page of the list under query and returns the case
// numbers in the order shown, learning store ids on the way.
func walk(t *testing.T, b *browser, query string, ids map[int]int64) []int {
	t.Helper()
	var got []int
	next := "/console/errors?" + query
	for pages := 0; next != ""; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		r := b.get(next)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %.300s", next, r.status, r.body)
		}
		for _, line := range strings.Split(r.body, "\n") {
			if m := rowRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[2])
				id, _ := strconv.ParseInt(m[1], 10, 64)
				got = append(got, n)
				ids[n] = id
			}
		}
		next = ""
		if m := olderRE.FindStringSubmatch(r.body); m != nil {
			next = "/console/errors?" + html.UnescapeString(m[1])
		}
	}
	return got
}

// TestErrorEventsPagesShowScrubbedEventsPagedFilteredAndRecorded sends
// generated events through the real Sentry-protocol ingest (an email and a
// JWT planted in each), then reads the console as a developer: every
// filter's pages hold exactly the events a filter over the sent list
// selects, newest first; an event's page shows its type, message, frames
// (most recent call first), browser, OS, release, environment, how often
// its error was seen and where it went; reading one from a tenant's page is
// recorded in the audit trail, reading one of Ferry's own is not, and
// nothing planted is ever shown.
func TestErrorEventsPagesShowScrubbedEventsPagedFilteredAndRecorded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, func(d *console.Deps) { d.ErrorsUpstream = upstream })
		post := ingest(t, e)
		r := rand.New(rand.NewPCG(18, 5))
		var all []sent
		releases, levels, types := []string{"ferry@1.0.0", "ferry@1.1.0"}, []string{"error", "warning", "fatal"}, []string{"TypeError", "RangeError"}
		for n := 1; n <= 73; n++ {
			e.tick(time.Duration(1+r.IntN(300)) * time.Second)
			s := sent{n: n, project: []string{"1", "2"}[r.IntN(2)], release: releases[r.IntN(2)], level: levels[r.IntN(3)],
				errType: types[r.IntN(2)], user: r.IntN(2) == 0, at: e.now}
			s.forwarded = s.project == "1"
			key := map[string]string{"1": errKey, "2": errKey2}[s.project]
			post(s.project, key, browserEvent(s, fmt.Sprintf("case-%d: cannot read owner of %s", s.n, email)))
			all = append(all, s)
		}
		// One error seen four times, spread out.
		var repeats []time.Time
		for k := range 4 {
			e.tick(time.Hour)
			s := sent{n: 1000 + k, project: "2", release: releases[0], level: "error", errType: "Error"}
			post("2", errKey2, browserEvent(s, "render failed"))
			repeats = append(repeats, e.now)
		}

		e.member("dev", staff.Developer)
		e.member("sup", staff.Support)
		dev := e.browser()
		dev.mustSignIn("dev")

		ids := map[int]int64{}
		for _, f := range []url.Values{{}, {"project": {"1"}}, {"level": {"fatal"}}, {"release": {"ferry@1.1.0"}, "level": {"error"}},
			{"project": {"2"}, "release": {"ferry@1.0.0"}, "level": {"warning"}}, {"release": {"ferry@9"}}} {
			var want []int
			for i := len(all) - 1; i >= 0; i-- {
				s := all[i]
				if (f.Get("project") == "" || f.Get("project") == s.project) && (f.Get("release") == "" || f.Get("release") == s.release) &&
					(f.Get("level") == "" || f.Get("level") == s.level) {
					want = append(want, s.n)
				}
			}
			got := walk(t, dev, f.Encode(), ids)
			// The repeated error is no case: it is on the list but not numbered.
			if !slices.Equal(got, want) {
				t.Errorf("filter %v: console lists %v, want %v", f, got, want)
			}
		}
		first := dev.get("/console/errors")
		for _, w := range []string{"Forwarding to Sentry", upstream, `id="outbox-queued">` + strconv.Itoa(count(all, func(s sent) bool { return s.forwarded }))} {
			if !strings.Contains(first.body, w) {
				t.Errorf("list page lacks %q", w)
			}
		}

		// An event from a tenant's page and one without a user.
		var tenantEv, plainEv sent
		for _, s := range all {
			if s.user && s.forwarded && tenantEv.n == 0 {
				tenantEv = s
			}
			if !s.user && !s.forwarded && plainEv.n == 0 {
				plainEv = s
			}
		}
		before := e.auditCount()
		d := dev.get(fmt.Sprintf("/console/errors/%d", ids[tenantEv.n]))
		if d.status != 200 {
			t.Fatalf("event page: %d %.300s", d.status, d.body)
		}
		inner, outer := strings.Index(d.body, fmt.Sprintf("inner%d", tenantEv.n)), strings.Index(d.body, ">outer<")
		for _, w := range []string{tenantEv.errType, fmt.Sprintf("case-%d: cannot read owner of", tenantEv.n), "Chrome 131", "Linux",
			tenantEv.release, "production", "1 time in this project", "queued: 0 attempts so far", `id="recorded"`, "/static/app.js"} {
			if !strings.Contains(d.body, w) {
				t.Errorf("event page lacks %q", w)
			}
		}
		if inner < 0 || outer < 0 || inner > outer {
			t.Errorf("frames not most recent first: inner at %d, outer at %d", inner, outer)
		}
		if e.auditCount() != before+1 {
			t.Fatalf("reading a tenant's event left %d audit rows", e.auditCount()-before)
		}
		if row := e.lastAudit(); row.Action != "errors.view" || row.Actor != "dev" || row.Role != "developer" ||
			row.Category != "Real-time Error Tracking Data" || !strings.Contains(row.Object, fmt.Sprintf("%032x", tenantEv.n)) {
			t.Errorf("audit row %+v", row)
		}
		before = e.auditCount()
		p := dev.get(fmt.Sprintf("/console/errors/%d", ids[plainEv.n]))
		if p.status != 200 || !strings.Contains(p.body, "kept locally only: it arrived while no upstream Sentry was configured") ||
			strings.Contains(p.body, `id="recorded"`) {
			t.Errorf("event without a user: %d %.300s", p.status, p.body)
		}
		if e.auditCount() != before {
			t.Error("reading an event that names no tenant's user was recorded")
		}

		// The repeated error: its count and first and last sighting.
		rep, err := e.errors.Recent(context.Background(), errortrack.Filter{Project: "2", Limit: 1})
		if err != nil || len(rep.Events) != 1 {
			t.Fatal(err)
		}
		rp := dev.get(fmt.Sprintf("/console/errors/%d", rep.Events[0].ID))
		for _, w := range []string{"4 times in this project", "first " + repeats[0].Format("2006-01-02 15:04:05 UTC"),
			"last " + repeats[3].Format("2006-01-02 15:04:05 UTC")} {
			if !strings.Contains(rp.body, w) {
				t.Errorf("repeated error's page lacks %q", w)
			}
		}

		// Support sees the same; nothing planted reaches any page.
		sup := e.browser()
		sup.mustSignIn("sup")
		for _, b := range []*browser{dev, sup} {
			for _, path := range []string{"/console/errors", fmt.Sprintf("/console/errors/%d", ids[tenantEv.n])} {
				r := b.get(path)
				if r.status != 200 {
					t.Errorf("%s: %d", path, r.status)
				}
				for _, bad := range []string{email, jwt, "5b10a2844c20165700ede21g", tenantID} {
					if strings.Contains(r.body, bad) {
						t.Errorf("%s shows %q", path, bad)
					}
				}
			}
		}

		// Bad input: a specific answer naming the field, nothing else shown.
		for path, field := range map[string]string{
			"/console/errors?project=abc":                                   "project",
			"/console/errors?level=loud":                                    "level",
			"/console/errors?release=" + strings.Repeat("r", 201):           "release",
			"/console/errors?cursor=" + url.QueryEscape("!!"):               "cursor",
			"/console/errors?project=1&cursor=" + url.QueryEscape("-1"):     "cursor",
			"/console/errors?level=error&cursor=" + url.QueryEscape("zz z"): "cursor",
		} {
			r := dev.get(path)
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, `<code id="error-field">`+field+`</code>`) || strings.Contains(r.body, "case-") {
				t.Errorf("%s: %d, want 400 naming %s: %.300s", path, r.status, field, r.body)
			}
		}
		for _, path := range []string{"/console/errors/abc", "/console/errors/0", "/console/errors/99999999"} {
			if r := dev.get(path); r.status != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", path, r.status)
			}
		}
	})
}

func count[T any](xs []T, f func(T) bool) int {
	n := 0
	for _, x := range xs {
		if f(x) {
			n++
		}
	}
	return n
}

// TestAnEventThatCannotBeRecordedIsNotShown: reading a tenant's event
// needs its audit row; if the trail cannot take it, the page says so and
// shows nothing of the event.
func TestAnEventThatCannotBeRecordedIsNotShown(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	post := ingest(t, e)
	s := sent{n: 7, project: "1", release: "ferry@1.0.0", level: "error", errType: "TypeError", user: true}
	post("1", errKey, browserEvent(s, "case-7: secret-looking but scrubbed"))
	pg, err := e.errors.Recent(context.Background(), errortrack.Filter{})
	if err != nil || len(pg.Events) != 1 {
		t.Fatal(err)
	}
	e.member("dev", staff.Developer)
	dev := e.browser()
	dev.mustSignIn("dev")
	if _, err := e.db.SQL.Exec(`ALTER TABLE audit_trail RENAME TO audit_trail_away`); err != nil {
		t.Fatal(err)
	}
	r := dev.get(fmt.Sprintf("/console/errors/%d", pg.Events[0].ID))
	if _, err := e.db.SQL.Exec(`ALTER TABLE audit_trail_away RENAME TO audit_trail`); err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusServiceUnavailable || strings.Contains(r.body, "case-7") || !bytes.Contains([]byte(r.body), []byte("could not be recorded")) {
		t.Errorf("unrecordable read: %d %.400s", r.status, r.body)
	}
	if r := dev.get(fmt.Sprintf("/console/errors/%d", pg.Events[0].ID)); r.status != 200 || !strings.Contains(r.body, "case-7") {
		t.Errorf("with the trail back: %d", r.status)
	}
}

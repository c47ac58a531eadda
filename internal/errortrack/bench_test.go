package errortrack_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ferry/internal/config"
	"ferry/internal/errortrack"
	"ferry/internal/scrub"
	"ferry/internal/server"
	"ferry/internal/store/storetest"
)

// benchEvent is a browser error as @sentry/browser sends it: an exception
// with 15 frames, 20 breadcrumbs, request headers, a user with an email,
// and planted personal data in the message — about 6 KB.
func benchEvent(id string) string {
	var frames, crumbs []string
	for i := range 15 {
		frames = append(frames, fmt.Sprintf(`{"filename":"https://ferry.example.com/static/app.js?v=3f2a","function":"render%d","lineno":%d,"colno":%d,"in_app":true}`, i, 100+i, 7*i))
	}
	for i := range 20 {
		crumbs = append(crumbs, fmt.Sprintf(`{"timestamp":1764482400.%d,"category":"ui.click","message":"button#save-%d > span","level":"info"}`, i, i))
	}
	return `{"event_id":"` + id + `","platform":"javascript","level":"error","release":"ferry@1.4.2","environment":"production",` +
		`"exception":{"values":[{"type":"TypeError","value":"Cannot read properties of undefined (reading 'owner') for ada.lovelace@example.org","mechanism":{"type":"onerror","handled":false},"stacktrace":{"frames":[` + strings.Join(frames, ",") + `]}}]},` +
		`"breadcrumbs":{"values":[` + strings.Join(crumbs, ",") + `]},` +
		`"request":{"url":"https://ferry.example.com/app/data-sources?jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln","headers":{"User-Agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","Referer":"https://x.atlassian.net/"}},` +
		`"user":{"email":"ada.lovelace@example.org"},"tags":{"ferry_tenant":"ten_0123456789abcdef0123456789abcdef","page":"data-sources"},` +
		`"sdk":{"name":"sentry.javascript.browser","version":"11.12.0"},"contexts":{"trace":{"trace_id":"0123456789abcdef0123456789abcdef"}}}`
}

// BenchmarkIngest measures envelopes (one event each) taken in, scrubbed
// and committed to the store and outbox (SQLite), through Ferry's whole
// handler stack, from parallel clients. Reported as events/s.
func BenchmarkIngest(b *testing.B) {
	db := storetest.SQLite(b)
	st := errortrack.NewStore(db)
	tr := errortrack.New(errortrack.Options{Store: st, Forward: true, Pseudonyms: fixedPseudonyms{},
		Projects: []errortrack.Project{{ID: "1", PublicKey: key}}, Rate: 1e9})
	h := server.NewServer(server.Deps{Config: config.Default(), Log: slog.New(slog.DiscardHandler), DB: db, Errors: tr})
	template := benchEvent("EVENTID")
	b.SetBytes(int64(len(template)))
	var n atomic.Int64
	b.SetParallelism(8) // SDKs in many browsers at once
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("%032x", n.Add(1))
			ev := strings.Replace(template, "EVENTID", id, 1)
			body := fmt.Sprintf("{}\n{\"type\":\"event\",\"length\":%d}\n%s\n", len(ev), ev)
			req := httptest.NewRequest("POST", "/errors/api/1/envelope/?sentry_key="+key, bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	reportRates(b, start, cpu0)
}

// cpuTime is the process's user+system CPU time: on a machine shared with
// other work, CPU per event says more than wall-clock rates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports events/s (wall clock) and CPU µs per event.
func reportRates(b *testing.B, start time.Time, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
}

// BenchmarkScrubEvent is the scrubbing alone: decode, keep what is
// allowed, scrub every kept string, encode.
func BenchmarkScrubEvent(b *testing.B) {
	ev := []byte(benchEvent("0123456789abcdef0123456789abcdef"))
	opts := scrub.EventOptions{Hasher: fixedPseudonyms{}, TenantTag: errortrack.TenantTag, ValidTenant: func(string) bool { return true }}
	b.SetBytes(int64(len(ev)))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		out, err := scrub.Event(ev, opts)
		if err != nil {
			b.Fatal(err)
		}
		_ = out.Title()
	}
	reportRates(b, start, cpu0)
}

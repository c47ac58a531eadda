package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jirasim"
)

// BenchmarkTables (issue 16): the Worklogs table of n issues at 150 ± 30 ms
// and Jira's burst limit (100 calls/s), against the per-issue sequential
// loop (list the ids, then issue/{id}/worklog for each, one at a time — the
// loop measured on its first peerIssues issues: a sequential loop's rate
// does not change with n); StatusHistory (time in status) rows/s at 150 ms
// and with no latency; and the live Go heap's peak while each export runs (the process holds
// the simulator too, so a hint only: internal/export BenchmarkTablesPeakRSS measures the
// tables' peak resident set in a child process), at n/10 and n issues.
//
//	FERRY_BENCH_ISSUES=100000 go test -run '^$' -bench Tables -benchtime 1x -timeout 120m ./internal/cli/
func BenchmarkTables(b *testing.B) {
	n := benchEnv("FERRY_BENCH_ISSUES", 20000)
	const peerIssues = 400
	slow := jirasim.Knobs{Latency: 150 * time.Millisecond, Jitter: 30 * time.Millisecond, Rate: 100}
	for _, size := range []int{n / 10, n} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			d := benchDemo(b, size, jirasim.Knobs{})
			ctx := context.Background()
			tn, _ := d.app.tenants.ByID(ctx, d.tenant)
			props, _ := d.app.platform.Properties(ctx, tn)
			src, err := d.app.appAPI.Sources.Create(ctx, props, d.tenant, export.Input{Name: "Tables", JQL: demoJQL, Fields: []string{"summary"},
				Tables: []string{export.TableIssues, "Worklogs", "StatusHistory"}}, d.sim.Users()[0].AccountID, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			csvURL := d.info.AppURL + "/export/" + src.ID + "/"
			run := func(table string, k jirasim.Knobs) (rows int, dur time.Duration, peakMiB float64, calls int64) {
				d.sim.SetKnobs(k)
				d.sim.ResetStats()
				stop := make(chan struct{})
				var peak atomic.Int64
				go samplePeakHeap(stop, &peak)
				rows, dur, err := csvExport(csvURL+table+".csv", d.info.Token)
				close(stop)
				if err != nil {
					b.Fatalf("%s: %v", table, err)
				}
				for _, c := range d.sim.Stats().Requests {
					calls += c
				}
				return rows, dur, float64(peak.Load()) / (1 << 20), calls
			}
			for range b.N {
				rows, dur, peak, calls := run("worklogs", slow)
				ferry := float64(rows) / dur.Seconds()
				d.sim.SetKnobs(slow)
				prow, pdur, err := peerWorklogs(d.info.SimURL, d.sim.Users()[0], demoJQL, peerIssues)
				if err != nil {
					b.Fatal(err)
				}
				peer := float64(prow) / pdur.Seconds()
				peerIssuesPerSec := float64(peerIssues) / pdur.Seconds()
				b.Logf("Worklogs, %d issues @150 ms, 100 calls/s: Ferry %d rows in %s (%.0f rows/s, %d Jira calls, heap peak %.1f MiB); per-issue sequential loop %.0f rows/s (%.1f issues/s: %s for all) — %.0f×",
					size, rows, dur.Round(time.Millisecond), ferry, calls, peak, peer, peerIssuesPerSec,
					(time.Duration(float64(size)/peerIssuesPerSec) * time.Second).Round(time.Minute), ferry/peer)
				b.ReportMetric(ferry, "worklog-rows/s")
				b.ReportMetric(ferry/peer, "x-sequential")
				b.ReportMetric(peak, "heap-peak-MiB")
				srows, sdur, speak, scalls := run("statushistory", slow)
				b.Logf("StatusHistory, %d issues @150 ms: %d rows in %s (%.0f rows/s, %d Jira calls, heap peak %.1f MiB)", size, srows, sdur.Round(time.Millisecond), float64(srows)/sdur.Seconds(), scalls, speak)
				zrows, zdur, zpeak, _ := run("statushistory", jirasim.Knobs{})
				b.Logf("StatusHistory, %d issues, no latency: %d rows in %s (%.0f rows/s, heap peak %.1f MiB)", size, zrows, zdur.Round(time.Millisecond), float64(zrows)/zdur.Seconds(), zpeak)
				b.ReportMetric(float64(srows)/sdur.Seconds(), "status-rows/s")
				b.ReportMetric(float64(zrows)/zdur.Seconds(), "status-rows/s-no-latency")
			}
		})
	}
}

// samplePeakHeap records the largest live Go heap (as the last GC found
// it) seen every 10 ms until stop closes.
func samplePeakHeap(stop chan struct{}, peak *atomic.Int64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		if v := int64(s[0].Value.Uint64()); v > peak.Load() {
			peak.Store(v)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// peerWorklogs is the per-issue sequential loop: the first `issues` ids of
// jql (search/jql), then each issue's worklogs, one call after another.
func peerWorklogs(base string, u jirasim.User, jql string, issues int) (rows int, dur time.Duration, err error) {
	start := time.Now()
	call := func(method, path string, body any, out any) error {
		var rd *bytes.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(u.Email, u.APIToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s %s: %d", method, path, resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var ids struct {
		Issues []struct {
			ID string `json:"id"`
		} `json:"issues"`
	}
	if err := call("POST", "/rest/api/3/search/jql", map[string]any{"jql": jql, "fields": []string{"id"}, "maxResults": issues}, &ids); err != nil {
		return 0, 0, err
	}
	for _, is := range ids.Issues {
		for startAt := 0; ; {
			var page struct {
				Total    int               `json:"total"`
				Worklogs []json.RawMessage `json:"worklogs"`
			}
			if err := call("GET", "/rest/api/3/issue/"+is.ID+"/worklog?startAt="+strconv.Itoa(startAt), nil, &page); err != nil {
				return rows, 0, err
			}
			rows += len(page.Worklogs)
			startAt += len(page.Worklogs)
			if len(page.Worklogs) == 0 || startAt >= page.Total {
				break
			}
		}
	}
	return rows, time.Since(start), nil
}

package cli

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFeedTop1 measures the cost of a feed request before its first
// Jira row: concurrent `$top=1` requests against the demo stack (SQLite,
// request log, simulator with no latency), reported as requests/s.
//
//	go test -run '^$' -bench FeedTop1 -benchtime 3000x ./internal/cli/
func BenchmarkFeedTop1(b *testing.B) {
	d, _, _ := startTestDemoWith(b, demoOptions{Issues: 2000})
	src := d.info.ODataURL + "Issues?$top=1&$select=Key,Summary"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	get := func() {
		req, _ := http.NewRequest("GET", src, nil)
		req.SetBasicAuth("bench", d.info.Token)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for range 20 {
		get() // warm caches
	}
	b.ResetTimer()
	start := time.Now()
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n.Add(1) <= int64(b.N) {
				get()
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

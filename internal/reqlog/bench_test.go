package reqlog_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/keys"
	"ferry/internal/reqlog"
	"ferry/internal/store/storetest"
)

// BenchmarkRequestLogOverhead measures request latency over loopback HTTP
// for a handler writing a ~50 KB JSON page, without and with the request log
// (SQLite, writer running). It reports p50 and p99 in microseconds.
//
//	go test -run '^$' -bench RequestLogOverhead -benchtime 5000x ./internal/reqlog/
func BenchmarkRequestLogOverhead(b *testing.B) {
	page := []byte(`{"@odata.context":"$metadata#Issues","value":[`)
	for i := 0; len(page) < 50<<10; i++ {
		page = fmt.Appendf(page, `{"key":"PROJ-%d","summary":"Issue number %d with a moderately long summary","status":"In Progress","assignee":"5b10ac8d82e05b22cc7d4ef5"},`, i, i)
	}
	page = append(page[:len(page)-1], "]}"...)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(page)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /odata/{source}/Issues", handler)
	for _, withLog := range []bool{false, true} {
		name := "without"
		if withLog {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			var h http.Handler = mux
			if withLog {
				db := storetest.SQLite(b)
				kek, _ := keys.OpenLocalKEK(filepath.Join(b.TempDir(), "kek.json"))
				l := reqlog.New(reqlog.NewStore(db, keys.NewRing(db, kek)), reqlog.Options{})
				defer l.Close(context.Background())
				h = l.Handler(func(r *http.Request) string { _, p := mux.Handler(r); return p }, mux)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			client := srv.Client()
			url := srv.URL + "/odata/src/Issues?$top=500&$select=key,summary&$skiptoken=abcdef0123456789"
			lat := make([]time.Duration, 0, b.N)
			b.SetBytes(int64(len(page)))
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
				req.Header.Set("OData-MaxVersion", "4.0")
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkRequestLogFlood saturates a server of trivial requests (a few
// bytes each) from 32 clients at once, without and with the request log
// (SQLite, writer running), in interleaved rounds of b.N requests each, and
// reports the medians: requests/s without and with, their ratio, and the
// entries the log lost.
//
//	go test -run '^$' -bench RequestLogFlood -benchtime 20000x ./internal/reqlog/
func BenchmarkRequestLogFlood(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /odata/{source}/Issues", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"value":[]}`)) })
	db := storetest.SQLite(b)
	kek, _ := keys.OpenLocalKEK(filepath.Join(b.TempDir(), "kek.json"))
	l := reqlog.New(reqlog.NewStore(db, keys.NewRing(db, kek)), reqlog.Options{})
	defer l.Close(context.Background())
	plain := httptest.NewServer(mux)
	defer plain.Close()
	logged := httptest.NewServer(l.Handler(func(r *http.Request) string { _, p := mux.Handler(r); return p }, mux))
	defer logged.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	flood := func(base string) float64 {
		url := base + "/odata/src/Issues?$top=1&$select=Key"
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}()
		}
		wg.Wait()
		return float64(b.N) / time.Since(start).Seconds()
	}
	rounds := envRounds()
	lostBefore := reqlog.Lost()
	var without, with, ratio []float64
	b.ResetTimer()
	for range rounds {
		a := flood(plain.URL)
		c := flood(logged.URL)
		l.Flush(context.Background())
		without, with, ratio = append(without, a), append(with, c), append(ratio, c/a)
	}
	b.StopTimer()
	b.ReportMetric(median(without), "req/s-without")
	b.ReportMetric(median(with), "req/s-with")
	b.ReportMetric(median(ratio), "ratio")
	b.ReportMetric(reqlog.Lost()-lostBefore, "lost")
}

func median(x []float64) float64 {
	y := slices.Clone(x)
	slices.Sort(y)
	return y[len(y)/2]
}

func envRounds() int {
	if n, err := strconv.Atoi(os.Getenv("FERRY_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

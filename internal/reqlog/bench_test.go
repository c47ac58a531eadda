package reqlog_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
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

package harness

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// A graceful stop loses nothing: requests answered just before SIGTERM or
// SIGINT reach `ferry serve` all have their request-log entries in the
// database once the process has exited (HTTP stops first, then the log is
// flushed, then the database closes).
func TestGracefulShutdownKeepsEveryAnsweredRequestsLogEntry(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
			t.Run(fmt.Sprintf("%s/%v", engine, sig), func(t *testing.T) {
				dbURL := engineURL(t, engine)
				s := newSites(t, 1, 10, 2)
				dir := filepath.Join(t.TempDir(), "data")
				env := s.ferryEnv(freeAddr(t), dir, dbURL)
				// All 60 at once on one site: above the default per-site cap
				// (8), which would answer most of them 429.
				env["FERRY_FEED_CONCURRENCY_PER_SITE"] = "64"
				p := startFerry(t, env)
				s.install(t, 0, p.URL)
				admin := s.sims[0].Users()[0].AccountID
				src := createSource(t, p.URL, s.pageToken(t, 0, admin), "shutdown")
				_, token := createToken(t, p.URL, s.pageToken(t, 0, admin), "shutdown")

				const burst = 60
				var wg sync.WaitGroup
				var mu sync.Mutex
				answered := 0
				for range burst {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest("GET", p.URL+"/odata/"+src+"/Issues?$top=1&$select=Key", nil)
						req.Header.Set("Authorization", "Bearer "+token)
						resp, err := http.DefaultClient.Do(req)
						if err == nil {
							resp.Body.Close()
							if resp.StatusCode == 200 {
								mu.Lock()
								answered++
								mu.Unlock()
							}
						}
					}()
				}
				wg.Wait()
				p.stop(t, sig) // at once: the last entries are still queued
				if answered != burst {
					t.Fatalf("%d of %d feed requests answered", answered, burst)
				}
				db := openDatabase(t, engine, firstNonEmpty(dbURL, dir))
				if n := db.count(t, `SELECT count(*) FROM request_log WHERE route = 'GET /odata/{source}/{rest...}'`); n != burst {
					t.Fatalf("%d feed requests answered before %v, %d logged", burst, sig, n)
				}
			})
		}
	}
}

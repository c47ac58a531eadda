package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/config"
	"ferry/internal/keys"
	"ferry/internal/staff"
	"ferry/internal/staff/stafftest"
	"ferry/internal/store/storetest"
)

// startDemoOn runs the demo (simulated Jira, Ferry serving, a data source
// and a token) on SQLite, or on a fresh PostgreSQL database.
func startDemoOn(t *testing.T, engine string) (*demo, map[string]string) {
	t.Helper()
	admin := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "demo")}
	if engine == "postgres" {
		admin["FERRY_DATABASE_URL"] = storetest.PostgresURL(t)
	}
	logs := &LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	e := env{getenv: func(k string) string {
		return map[string]string{"FERRY_LOG_FORMAT": "json", "FERRY_DATABASE_URL": admin["FERRY_DATABASE_URL"]}[k]
	}, stdout: io.Discard, stderr: logs}
	d, err := startDemo(ctx, e, demoOptions{AppAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0", DataDir: admin["FERRY_DATA_DIR"], Issues: 40})
	if err != nil {
		cancel()
		t.Fatalf("demo: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.wait(); err != nil {
			t.Errorf("demo shut down with %v", err)
		}
	})
	return d, admin
}

// ferryCmd runs a ferry command as another process would: its own
// configuration, its own database connection and key ring.
func ferryCmd(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := Run(context.Background(), append([]string{"ferry"}, args...), func(k string) string { return env[k] }, nil, &out, &errb); err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// TestKEKRotationWhileServing is the operator's rotation with Ferry serving:
// feed clients pull all the time while `ferry keys rotate-kek` runs twice in
// another process; the server then starts a new day (its first request
// creates that day's log key) and later versions are retired. Every feed
// request succeeds, /readyz says ready throughout, and every request-log
// entry — including the new day's, made by the server that started before
// the rotations — opens from another process at the end.
func TestKEKRotationWhileServing(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			d, admin := startDemoOn(t, engine)
			feed := d.info.ODataURL + "Issues?$top=3&$select=Key,Summary"
			var served, failed atomic.Int64
			var mu sync.Mutex
			var failures []string
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						for _, u := range []string{feed, d.info.AppURL + "/readyz"} {
							req, _ := http.NewRequest("GET", u, nil)
							req.SetBasicAuth("powerbi", d.info.Token)
							resp, err := http.DefaultClient.Do(req)
							if err != nil {
								failed.Add(1)
								continue
							}
							body, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								failed.Add(1)
								mu.Lock()
								failures = append(failures, fmt.Sprintf("%s: %d %.200s", u, resp.StatusCode, body))
								mu.Unlock()
							} else {
								served.Add(1)
							}
						}
					}
				}()
			}
			// waitServed waits until n more requests have been answered: the
			// signal that the server worked on through the last step.
			waitServed := func(n int64) {
				t.Helper()
				goal := served.Load() + n
				for deadline := time.Now().Add(60 * time.Second); served.Load() < goal; {
					if time.Now().After(deadline) {
						t.Fatalf("the server answered only %d of %d requests", served.Load(), goal)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			waitServed(20)
			out := ferryCmd(t, admin, "keys", "rotate-kek")
			t.Log(strings.TrimSpace(out))
			waitServed(20)
			// A new day begins for the server: its next requests create that
			// day's log key, wrapped by a server that started before rotation.
			d.app.db.SetClock(func() time.Time { return time.Now().Add(24 * time.Hour) })
			waitServed(20)
			ferryCmd(t, admin, "keys", "rotate-kek")
			waitServed(20)
			close(stop)
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Fatalf("%d of %d requests failed during rotation; first: %s", n, n+served.Load(), failures[0])
			}

			// Another process opens the new day's entries.
			tomorrow := keys.Day(time.Now().Add(24 * time.Hour))
			opensEntries(t, admin, d.tenant, tomorrow)

			// Retire the two old versions; the server and other processes carry on.
			ferryCmd(t, admin, "keys", "retire-kek", "1")
			ferryCmd(t, admin, "keys", "retire-kek", "2")
			list := ferryCmd(t, admin, "keys", "list")
			if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "version 3  primary") {
				t.Fatalf("keys list after retiring 1 and 2:\n%s", list)
			}
			for _, u := range []string{feed, d.info.AppURL + "/readyz"} {
				if code, _, body := fetch(t, u, d.info.Token); code != 200 {
					t.Fatalf("after retirement %s: %d %s", u, code, body)
				}
			}
			opensEntries(t, admin, d.tenant, tomorrow)
		})
	}
}

// opensEntries decrypts, from another process, the tenant's request-log
// entries of day (waiting for the background writer to store one): a
// support member signs in to that process's staff store and breaks glass
// for each entry, as the console does.
func opensEntries(t *testing.T, vars map[string]string, tenant, day string) {
	t.Helper()
	var ids []string
	for deadline := time.Now().Add(30 * time.Second); len(ids) == 0; {
		out := ferryCmd(t, vars, "reqlog", "show", "--tenant", tenant, "--since", day)
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], strings.ReplaceAll(day, "-", "")) {
				ids = append(ids, f[0])
			}
		}
		if len(ids) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no request-log entries of %s appeared:\n%s", day, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ctx := context.Background()
	cfg, _, err := config.Load("test", nil, func(k string) string { return vars[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(ctx, env{getenv: func(k string) string { return vars[k] }, stdout: io.Discard, stderr: io.Discard}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p := stafftest.SignedIn(t, a.staff, fmt.Sprintf("rotation%d", time.Now().UnixNano()%1_000_000_000), staff.Support)
	for _, id := range ids[:min(len(ids), 5)] {
		g := stafftest.Grant(t, a.staff, p, staff.DecryptRequestLog, tenant, id)
		_, req, err := a.requests.DecryptRequest(ctx, g, id, cfg.RequestLogDays)
		if err != nil || (!strings.Contains(req.Path, "/odata/") && !strings.Contains(req.Path, "readyz")) {
			t.Fatalf("entry %s decrypted to %+v, %v", id, req, err)
		}
	}
}

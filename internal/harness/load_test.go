package harness

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"ferry/internal/jirasim"
	"ferry/internal/store/storetest"
)

var (
	loadPhase = flag.Duration("harness.load", 0, "run TestLoadRun with phases of this length (scripts/load); 0 skips it")
	loadOut   = flag.String("harness.load-report", "", "write TestLoadRun's table to this file")
	loadEng   = flag.String("harness.load-engine", "sqlite", "TestLoadRun: sqlite or postgres")
	aceDir    = flag.String("harness.ace", "", "TestLoadRun: interop/ace with its node_modules: also run atlassian-connect-express (on PostgreSQL) for the JWT-authenticated request rate")
)

// startACE runs interop/ace/app.js on a fresh PostgreSQL database and
// returns its endpoint and Authorization header.
func startACE(t *testing.T, dir string) (string, string) {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("node", filepath.Join(dir, "app.js"))
	cmd.Env = append(os.Environ(), "PORT="+port, "ACE_DB_URL="+storetest.PostgresURL(t), "NODE_ENV=production", "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var first struct{ URL, Authorization string }
	if err := json.NewDecoder(out).Decode(&first); err != nil {
		t.Fatalf("atlassian-connect-express did not start: %v", err)
	}
	go io.Copy(io.Discard, out)
	return first.URL, first.Authorization
}

// peakRSS is the process's peak resident memory (VmHWM) in MiB.
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return fmt.Sprintf("%d MiB", kb/1024)
		}
	}
	return "?"
}

// TestLoadRun is the bounded load run on loopback behind scripts/load: the
// real binary (no race detector) against a simulated site with Jira's
// latency, at rising rates for feeds and for forged lifecycle callbacks, at
// full speed for the JWT-authenticated app API, then a gentle rate to show
// recovery. It reports throughput, p50/p99 latency, answers by status and
// Ferry's peak RSS; it asserts nothing about time (TestOverload… checks the
// shedding by counting).
func TestLoadRun(t *testing.T) {
	if *loadPhase == 0 {
		t.Skip("the load run is scripts/load (-harness.load=DURATION)")
	}
	s := newSitesWith(t, 1, jirasim.Options{Issues: 200, Users: 2, Latency: 20 * time.Millisecond})
	env := s.ferryEnv(freeAddr(t), filepath.Join(t.TempDir(), "data"), engineURL(t, *loadEng))
	env["FERRY_LOG_LEVEL"] = "info"
	p := startFerry(t, env)
	pid := p.cmd.Process.Pid
	s.install(t, 0, p.URL)
	admin := s.sims[0].Users()[0].AccountID
	page := s.pageToken(t, 0, admin)
	src := createSource(t, p.URL, page, "load")
	_, token := createToken(t, p.URL, page, "load")

	var rows []string
	row := func(name string, rate string, m *vegeta.Metrics) {
		var codes []string
		for c, n := range m.StatusCodes {
			codes = append(codes, fmt.Sprintf("%s×%d", c, n))
		}
		r := fmt.Sprintf("| %s | %s | %.0f/s | %.0f/s | %s | %s | %s | %s |", name, rate, m.Rate, m.Throughput,
			m.Latencies.P50.Round(100*time.Microsecond), m.Latencies.P99.Round(100*time.Microsecond), strings.Join(codes, " "), peakRSS(pid))
		rows = append(rows, r)
		t.Log(r)
	}
	attack := func(name string, rate vegeta.Rate, tr vegeta.Targeter, workers uint64) {
		maxWorkers := uint64(4096)
		if rate.Freq == 0 {
			maxWorkers = workers // full speed: a fixed number of clients, each waiting for its answer
		}
		atk := vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.Workers(workers), vegeta.MaxWorkers(maxWorkers), vegeta.KeepAlive(true))
		var m vegeta.Metrics
		for res := range atk.Attack(tr, rate, *loadPhase, name) {
			m.Add(res)
		}
		m.Close()
		label := fmt.Sprintf("%d/s", rate.Freq)
		if rate.Freq == 0 {
			label = fmt.Sprintf("max, %d clients", workers)
		}
		row(name, label, &m)
	}
	feed := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: p.URL + "/odata/" + src + "/Issues?$top=20&$select=Key,Summary,Status",
		Header: http.Header{"Authorization": {"Bearer " + token}}})
	for _, r := range []int{25, 100, 400, 1600} {
		attack("feed, 20 rows", vegeta.Rate{Freq: r, Per: time.Second}, feed, 16)
	}
	qsh := sha256.Sum256([]byte("POST&/lifecycle/installed&"))
	var n atomic.Int64
	forged := func(tg *vegeta.Target) error {
		i := n.Add(1)
		tok := unsignedJWT(fmt.Sprintf(`{"alg":"RS256","kid":"forged-%d"}`, i),
			fmt.Sprintf(`{"iss":"ck-%d","aud":"%s","iat":%d,"exp":%d,"qsh":"%x"}`, i, p.URL, time.Now().Unix(), time.Now().Add(time.Minute).Unix(), qsh))
		*tg = vegeta.Target{Method: "POST", URL: p.URL + "/lifecycle/installed", Body: []byte(`{"key":"ferry-bi-connector","clientKey":"ck"}`),
			Header: http.Header{"Authorization": {"JWT " + tok}, "Content-Type": {"application/json"}}}
		return nil
	}
	for _, r := range []int{100, 1000} {
		attack("forged install", vegeta.Rate{Freq: r, Per: time.Second}, forged, 16)
	}
	api := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: p.URL + "/app-api/tokens",
		Header: http.Header{"Authorization": {"JWT " + page}}})
	attack("app API (JWT), Ferry on "+*loadEng, vegeta.Rate{Freq: 0}, api, 32)
	if *aceDir != "" {
		u, auth := startACE(t, *aceDir)
		other := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: u, Header: http.Header{"Authorization": {auth}}})
		attack("app API (JWT), atlassian-connect-express on postgres", vegeta.Rate{Freq: 0}, other, 32)
	}
	attack("feed after the overload", vegeta.Rate{Freq: 25, Per: time.Second}, feed, 4)

	table := "| run | rate asked | rate sent | throughput (2xx) | p50 | p99 | answers | Ferry peak RSS |\n|---|---|---|---|---|---|---|---|\n" +
		strings.Join(rows, "\n") + "\n"
	if *loadOut != "" {
		if err := os.WriteFile(*loadOut, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/export/odata"
	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

// The benchmarks of the connector's promise to be fast and polite. Run:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/export/
//
// Results, machine and command are recorded in docs/benchmarks.md.

// benchFields are the fields a typical BI data source selects.
var benchFields = []string{"summary", "status", "priority", "issuetype", "project", "assignee", "reporter", "created", "updated",
	"labels", "fixVersions", "resolutiondate", "customfield_10010", "customfield_10011", "customfield_10012"}

const benchJQL = `created >= "2000-01-01" ORDER BY created DESC`

func benchSim(b *testing.B, o jirasim.Options) (*jira.Client, *jirasim.Sim) {
	sim := jirasim.New(o)
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	u := sim.Users()[0]
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c, err := jira.New(srv.URL, &http.Client{Transport: tr}, basicAuth{u.Email, u.APIToken})
	if err != nil {
		b.Fatal(err)
	}
	return c, sim
}

// encodeRows streams issues as Ferry's feeds do: each row converted and
// written as OData JSON, nothing kept.
func ferryExport(ctx context.Context, c *jira.Client, workers int, out io.Writer) (int, error) {
	return ferryExportCounting(ctx, c, workers, out, nil)
}

// ferryExportCounting is ferryExport adding each row to total (if set).
func ferryExportCounting(ctx context.Context, c *jira.Client, workers int, out io.Writer, total *atomic.Int64) (int, error) {
	fields, err := c.Fields(ctx)
	if err != nil {
		return 0, err
	}
	cols := export.IssueColumns(fields, benchFields)
	var props []odata.Property
	for _, col := range cols {
		props = append(props, odata.Property{Name: col.Name, Type: odata.EdmType(col.Edm), Collection: col.Collection, Nullable: col.Name != "Key"})
	}
	bw := bufio.NewWriterSize(out, 32<<10)
	rw := odata.NewRowWriter(bw, "http://ferry/odata/x/$metadata#Issues", props)
	f := &export.Fetcher{Client: c, Workers: workers, ReadAhead: benchAhead}
	row := make(odata.Row, len(cols))
	where, order, _ := strings.Cut(benchJQL, " ORDER BY ")
	w := export.Walk{Where: where, Order: order, Fields: append([]string{"key"}, benchFields...), Cols: cols, Zone: time.UTC}
	_, err = f.Rows(ctx, w, export.Cursor{}, -1, nil, func(vals []any, _, _ export.Cursor) error {
		for i, col := range cols {
			row[col.Name] = vals[i]
		}
		if total != nil {
			total.Add(1)
		}
		return rw.WriteRow(row)
	})
	if err != nil {
		return 0, err
	}
	rw.Close("")
	return rw.Rows(), bw.Flush()
}

// baselineExport is the usual connector approach: page through search/jql
// sequentially with nextPageToken, 100 issues per page with full fields.
func baselineExport(ctx context.Context, c *jira.Client, base string, auth jira.Authorizer, out io.Writer) (int, error) {
	rows, token := 0, ""
	hc := &http.Client{}
	for {
		body := map[string]any{"jql": benchJQL, "fields": benchFields, "maxResults": 100}
		if token != "" {
			body["nextPageToken"] = token
		}
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/rest/api/3/search/jql", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		auth.Authorize(ctx, req)
		resp, err := hc.Do(req)
		if err != nil {
			return rows, err
		}
		var page struct {
			Issues        []json.RawMessage `json:"issues"`
			NextPageToken string            `json:"nextPageToken"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return rows, fmt.Errorf("baseline page: %d %v", resp.StatusCode, err)
		}
		for _, is := range page.Issues {
			out.Write(is)
			rows++
		}
		if page.NextPageToken == "" {
			return rows, nil
		}
		token = page.NextPageToken
	}
}

// BenchmarkExport100kAt150ms compares Ferry's pipeline with the sequential
// baseline against a Jira that answers in 150 ms ± 30 ms and allows 100
// requests/s per endpoint.
func BenchmarkExport100kAt150ms(b *testing.B) {
	n := envInt("FERRY_BENCH_ISSUES", 100_000)
	opts := jirasim.Options{Issues: n, Projects: 4, Users: 5, Seed: 1, Latency: 150 * time.Millisecond, Jitter: 30 * time.Millisecond, Rate: 100}
	for _, mode := range []string{"ferry-workers-4", "ferry-workers-8", "baseline-sequential"} {
		b.Run(mode, func(b *testing.B) {
			c, sim := benchSim(b, opts)
			u := sim.Users()[0]
			for i := 0; i < b.N; i++ {
				sim.ResetStats()
				start := time.Now()
				var rows int
				var err error
				switch mode {
				case "ferry-workers-4":
					rows, err = ferryExport(context.Background(), c, 4, io.Discard)
				case "ferry-workers-8":
					rows, err = ferryExport(context.Background(), c, 8, io.Discard)
				default:
					rows, err = baselineExport(context.Background(), c, sim.BaseURL(), basicAuth{u.Email, u.APIToken}, io.Discard)
				}
				if err != nil || rows != n {
					b.Fatalf("%s: rows=%d err=%v", mode, rows, err)
				}
				st := sim.Stats()
				b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "issues/s")
				b.ReportMetric(float64(st.RateLimited), "429s")
				b.ReportMetric(float64(st.MaxConcurrent), "max-in-flight")
			}
		})
	}
}

// countingWriter counts bytes.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkThroughputZeroLatency measures Ferry's rows/s with no network
// latency — the pipeline as the feeds run it (sliced reads paced by a
// tenant's Limits, rows converted and written as OData JSON) — against the
// raw transfer of the same kind of upstream bytes: search/jql pages of the
// same fields, read on as many chains at once over equal slices of Created,
// bodies discarded undecoded (32 chains over 256 slices: a floor for any
// client reading pages with fields). Interleaved rounds,
// medians and their ratio.
func BenchmarkThroughputZeroLatency(b *testing.B) {
	n := envInt("FERRY_BENCH_ISSUES", 100_000)
	c, sim := benchSim(b, jirasim.Options{Issues: n, Projects: 4, Users: 5, Seed: 1})
	limits := &jira.Limits{Cap: 32}
	c.Limits = limits.Tenant("bench")
	u := sim.Users()[0]
	auth := basicAuth{u.Email, u.APIToken}
	var ferry, raw, ratio []float64
	for r := 0; r < envInt("FERRY_BENCH_ROUNDS", 3); r++ {
		var cw countingWriter
		start := time.Now()
		rows, err := ferryExport(context.Background(), c, 4, &cw)
		if err != nil || rows != n {
			b.Fatalf("rows=%d err=%v", rows, err)
		}
		f := float64(rows) / time.Since(start).Seconds()
		start = time.Now()
		in, rrows := rawTransfer(b, sim.BaseURL(), auth, 32)
		if rrows != n {
			b.Fatalf("raw rows=%d", rrows)
		}
		rr := float64(rrows) / time.Since(start).Seconds()
		ferry, raw, ratio = append(ferry, f), append(raw, rr), append(ratio, f/rr)
		b.Logf("round %d: ferry %.0f rows/s (%.1f MB out), raw %.0f rows/s (%.1f MB in)", r, f, float64(cw.n)/1e6, rr, float64(in)/1e6)
	}
	b.ReportMetric(median(ferry), "ferry-rows/s")
	b.ReportMetric(median(raw), "raw-rows/s")
	b.ReportMetric(median(ratio), "ferry/raw")
}

func median(x []float64) float64 {
	y := slices.Clone(x)
	slices.Sort(y)
	return y[len(y)/2]
}

// tailToken finds the nextPageToken at the end of a search page without
// reading the issues before it.
func tailToken(page []byte) string {
	i := bytes.LastIndex(page, []byte(`"nextPageToken":"`))
	if i < 0 {
		return ""
	}
	rest := page[i+len(`"nextPageToken":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// rawTransfer reads every issue of benchJQL's condition with the bench
// fields as search/jql pages of 100 on `chains` chains at once, over 256
// equal slices of Created (the generated data's range), and throws the
// bodies away undecoded.
func rawTransfer(b *testing.B, base string, auth jira.Authorizer, chains int) (int64, int) {
	ctx := context.Background()
	lo := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const k = 256
	work := make(chan int)
	var total, rows atomic.Int64
	var wg sync.WaitGroup
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	fields := append([]string{"key"}, benchFields...)
	for range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				a := lo.Add(hi.Sub(lo) / k * time.Duration(s)).Truncate(time.Minute)
				z := lo.Add(hi.Sub(lo) / k * time.Duration(s+1)).Truncate(time.Minute)
				jql := fmt.Sprintf(`created >= "%s" AND created < "%s"`, a.Format("2006-01-02 15:04"), z.Format("2006-01-02 15:04"))
				token := ""
				for {
					body := map[string]any{"jql": jql, "fields": fields, "maxResults": 100}
					if token != "" {
						body["nextPageToken"] = token
					}
					raw, _ := json.Marshal(body)
					req, _ := http.NewRequestWithContext(ctx, "POST", base+"/rest/api/3/search/jql", bytes.NewReader(raw))
					req.Header.Set("Content-Type", "application/json")
					auth.Authorize(ctx, req)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					data, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					total.Add(int64(len(data)))
					// Only the page's tail is read: the next token. A full
					// page holds 100 issues; the last one is counted.
					token = tailToken(data)
					if token == "" {
						p, err := jira.ReadPage(data)
						if err != nil {
							b.Error(err)
							return
						}
						rows.Add(int64(len(p.Issues)))
						break
					}
					rows.Add(100)
				}
			}
		}()
	}
	for s := 0; s < k; s++ {
		work <- s
	}
	close(work)
	wg.Wait()
	return total.Load(), int(rows.Load())
}

// BenchmarkPeakRSS runs the pipeline in a child process against a simulator
// in another child process, for 10k, 100k and 1M issues, and reports the
// pipeline process's peak resident set: it must stay flat. With
// FERRY_BENCH_FEEDS=10 the child reads the site on that many feeds at once,
// sharing one tenant's rate-limit standing as the server's feeds do, for
// FERRY_BENCH_RSS_SECONDS (default 90; memory is flat long before).
func BenchmarkPeakRSS(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if s := os.Getenv("FERRY_BENCH_RSS_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(f)
			sizes = append(sizes, n)
		}
	}
	feeds := envInt("FERRY_BENCH_FEEDS", 1)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%d-feeds-%d", n, feeds), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				simURL, user, stop := startSimChild(b, n)
				cmd := exec.Command(os.Args[0], "-test.run=^TestPipelineChild$", "-test.v", "-test.timeout=60m")
				cmd.Env = append(os.Environ(), "FERRY_BENCH_ROLE=pipeline", "FERRY_BENCH_SIM="+simURL,
					"FERRY_BENCH_USER="+user.Email, "FERRY_BENCH_TOKEN="+user.APIToken, "FERRY_BENCH_ISSUES="+strconv.Itoa(n))
				out, err := cmd.CombinedOutput()
				stop()
				if err != nil {
					b.Fatalf("pipeline child: %v\n%s", err, out)
				}
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
				for _, line := range strings.Split(string(out), "\n") {
					if f := strings.Fields(line); len(f) == 3 && f[0] == "FERRY_VMHWM" {
						kb, _ := strconv.Atoi(f[1])
						b.ReportMetric(float64(kb)/1024, "VmHWM-MiB")
					}
					if strings.HasPrefix(line, "heap-inuse") {
						b.Log(line)
					}
					if f := strings.Fields(line); len(f) == 2 && f[0] == "FERRY_ROWS" {
						rows, _ := strconv.Atoi(f[1])
						b.ReportMetric(float64(rows), "rows-read")
					}
				}
				b.ReportMetric(float64(n), "issues")
			}
		})
	}
}

// benchAhead is the read-ahead the walks of one benchmark process share, as
// a server's feeds share one.
var benchAhead = export.NewReadAhead(envInt("FERRY_BENCH_AHEAD", export.SharedReadAhead))

type simUser struct{ Email, APIToken string }

func startSimChild(b *testing.B, n int) (string, simUser, func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimChild$")
	cmd.Env = append(os.Environ(), "FERRY_BENCH_ROLE=sim", "FERRY_BENCH_ISSUES="+strconv.Itoa(n))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("sim child: %v", err)
	}
	var hello struct {
		BaseURL string `json:"base_url"`
		Users   []struct {
			Email    string `json:"email"`
			APIToken string `json:"api_token"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(line), &hello); err != nil {
		b.Fatalf("sim child said %q", line)
	}
	return hello.BaseURL, simUser{hello.Users[0].Email, hello.Users[0].APIToken}, func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
}

// TestSimChild is the simulator process of BenchmarkPeakRSS.
func TestSimChild(t *testing.T) {
	if os.Getenv("FERRY_BENCH_ROLE") != "sim" {
		t.Skip("runs only as a child of BenchmarkPeakRSS")
	}
	ctx, stop := signalContext()
	defer stop()
	jirasim.RunCLI(ctx, []string{"--json", "--issues", os.Getenv("FERRY_BENCH_ISSUES"), "--projects", "4", "--users", "3"}, os.Stdout, io.Discard)
}

// TestPipelineChild is the pipeline process of BenchmarkPeakRSS.
func TestPipelineChild(t *testing.T) {
	if os.Getenv("FERRY_BENCH_ROLE") != "pipeline" {
		t.Skip("runs only as a child of BenchmarkPeakRSS")
	}
	c, err := jira.New(os.Getenv("FERRY_BENCH_SIM"), &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		basicAuth{os.Getenv("FERRY_BENCH_USER"), os.Getenv("FERRY_BENCH_TOKEN")})
	if err != nil {
		t.Fatal(err)
	}
	feeds := envInt("FERRY_BENCH_FEEDS", 1)
	limits := &jira.Limits{Cap: 32}
	c.Limits = limits.Tenant("bench")
	ctx := context.Background()
	if feeds > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(envInt("FERRY_BENCH_RSS_SECONDS", 90))*time.Second)
		defer cancel()
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	if os.Getenv("FERRY_BENCH_MEMSTATS") != "" {
		go func() {
			for {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				status, _ := os.ReadFile("/proc/self/status")
				rss := ""
				for _, line := range strings.Split(string(status), "\n") {
					if strings.HasPrefix(line, "VmRSS:") {
						rss = strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
					}
				}
				if f := os.Getenv("FERRY_BENCH_HEAPPROF"); f != "" && m.HeapInuse > 40<<20 {
					if hf, err := os.Create(f); err == nil {
						pprof.WriteHeapProfile(hf)
						hf.Close()
					}
				}
				fmt.Fprintf(os.Stderr, "heap-inuse %d MiB, heap-sys %d, stack %d, goroutines %d, sys %d, rss %s\n", m.HeapInuse>>20, m.HeapSys>>20, m.StackInuse>>20, runtime.NumGoroutine(), m.Sys>>20, rss)
				time.Sleep(time.Second)
			}
		}()
	}
	for range feeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cw countingWriter
			rows, err := ferryExportCounting(ctx, c, 4, &cw, &total)
			if feeds == 1 && (err != nil || strconv.Itoa(rows) != os.Getenv("FERRY_BENCH_ISSUES")) {
				t.Errorf("rows=%d err=%v", rows, err)
			}
			if feeds > 1 && err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	fmt.Println("FERRY_ROWS", total.Load())
	// Peak resident set as the kernel counts it, for the parent to report.
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Println("FERRY_VMHWM", strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")))
		}
	}
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return def
}

func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signalNotify(ch)
	go func() { <-ch; cancel() }()
	return ctx, cancel
}

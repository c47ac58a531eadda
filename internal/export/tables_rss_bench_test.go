package export_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jira"
)

// BenchmarkTablesPeakRSS measures the per-issue tables (Worklogs, Comments,
// StatusHistory) as BenchmarkPeakRSS measures Issues: the table's CSV
// (export.TableCSV, the feed's plan, rows and writer) streamed in a child
// process from a simulator in another child process, at 10k and 100k
// issues; it reports the child's peak resident set, which must stay flat,
// its rows and rows/s. StatusHistory counts WorkingSeconds in a working
// calendar. FERRY_BENCH_RSS_SIZES and FERRY_BENCH_TABLES override the
// sizes and tables; FERRY_BENCH_MEMSTATS=1 logs the child's heap every
// second.
//
//	go test -run '^$' -bench TablesPeakRSS -benchtime 1x -timeout 60m ./internal/export/
func BenchmarkTablesPeakRSS(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if s := os.Getenv("FERRY_BENCH_RSS_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(f)
			sizes = append(sizes, n)
		}
	}
	tables := []string{"Worklogs", "Comments", "StatusHistory"}
	if s := os.Getenv("FERRY_BENCH_TABLES"); s != "" {
		tables = strings.Split(s, ",")
	}
	for _, n := range sizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			simURL, user, stop := startSimChild(b, n)
			defer stop()
			for _, table := range tables {
				b.Run(table, func(b *testing.B) {
					for range b.N {
						cmd := exec.Command(os.Args[0], "-test.run=^TestTableChild$", "-test.v", "-test.timeout=60m")
						cmd.Env = append(os.Environ(), "FERRY_BENCH_ROLE=table", "FERRY_BENCH_TABLE="+table, "FERRY_BENCH_SIM="+simURL,
							"FERRY_BENCH_USER="+user.Email, "FERRY_BENCH_TOKEN="+user.APIToken)
						out, err := cmd.CombinedOutput()
						if err != nil {
							b.Fatalf("%s child: %v\n%s", table, err, out)
						}
						ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
						b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
						for _, line := range strings.Split(string(out), "\n") {
							f := strings.Fields(line)
							switch {
							case len(f) == 3 && f[0] == "FERRY_VMHWM":
								kb, _ := strconv.Atoi(f[1])
								b.ReportMetric(float64(kb)/1024, "VmHWM-MiB")
							case len(f) == 3 && f[0] == "FERRY_ROWS":
								rows, _ := strconv.Atoi(f[1])
								secs, _ := strconv.ParseFloat(f[2], 64)
								b.ReportMetric(float64(rows), "rows")
								b.ReportMetric(float64(rows)/secs, "rows/s")
							case strings.HasPrefix(line, "heap-inuse"):
								b.Log(line)
							}
						}
						b.ReportMetric(float64(n), "issues")
					}
				})
			}
		})
	}
}

// TestTableChild is the table process of BenchmarkTablesPeakRSS.
func TestTableChild(t *testing.T) {
	if os.Getenv("FERRY_BENCH_ROLE") != "table" {
		t.Skip("runs only as a child of BenchmarkTablesPeakRSS")
	}
	c, err := jira.New(os.Getenv("FERRY_BENCH_SIM"), &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, basicAuth{os.Getenv("FERRY_BENCH_USER"), os.Getenv("FERRY_BENCH_TOKEN")})
	if err != nil {
		t.Fatal(err)
	}
	limits := &jira.Limits{Cap: 32}
	c.Limits = limits.Tenant("bench")
	if os.Getenv("FERRY_BENCH_MEMSTATS") != "" {
		go func() {
			for {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				fmt.Fprintf(os.Stderr, "heap-inuse %d MiB, heap-sys %d, goroutines %d, sys %d\n", m.HeapInuse>>20, m.HeapSys>>20, runtime.NumGoroutine(), m.Sys>>20)
				time.Sleep(time.Second)
			}
		}()
	}
	src := export.DataSource{WorkingTime: &export.WorkingTime{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00",
		TimeZone: "Europe/Berlin", Holidays: []string{"2024-12-25", "2024-12-26"}}}
	f := &export.Fetcher{Client: c, Workers: 4, ReadAhead: benchAhead}
	start := time.Now()
	var cw countingWriter
	rows, err := export.TableCSV(context.Background(), f, os.Getenv("FERRY_BENCH_TABLE"), benchJQL, src, &cw)
	if err != nil || rows == 0 {
		t.Fatalf("rows=%d err=%v", rows, err)
	}
	fmt.Println("FERRY_ROWS", rows, time.Since(start).Seconds())
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Println("FERRY_VMHWM", strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")))
		}
	}
}

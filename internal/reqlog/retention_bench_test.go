package reqlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// benchRows are the sizes of an expired day in the retention benchmarks;
// FERRY_BENCH_ROWS overrides the larger one.
func benchRows() []int {
	big := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("FERRY_BENCH_ROWS")); err == nil && v > 0 {
		big = v
	}
	return []int{100_000, big}
}

var benchDay = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fillDay writes n synthetic entries (300-byte sealed-request stand-ins) for
// benchDay straight in SQL: the benchmark measures deletion, not logging.
func fillDay(b *testing.B, s *Store, n int) {
	b.Helper()
	ctx := context.Background()
	if _, err := s.keys.DayKey(ctx, benchDay); err != nil {
		b.Fatal(err)
	}
	q := `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $1)
		INSERT INTO request_log (id, day, at, route, method, status, duration_us, bytes_out, tenant_id, user_pseudonym, request)
		SELECT '20260101-' || printf('%032d', i), '2026-01-01', $2, 'GET /odata/{source}/Issues', 'GET', 200, 1500, 51200, 't1',
		       'f00dfeedf00dfeedf00dfeedf00dfeed', randomblob(300) FROM g`
	if s.db.Dialect == store.Postgres {
		if err := s.ensurePartition(ctx, benchDay); err != nil {
			b.Fatal(err)
		}
		q = `INSERT INTO request_log (id, day, at, route, method, status, duration_us, bytes_out, tenant_id, user_pseudonym, request)
		SELECT '20260101-' || lpad(i::text, 32, '0'), DATE '2026-01-01', $2, 'GET /odata/{source}/Issues', 'GET', 200, 1500, 51200, 't1',
		       'f00dfeedf00dfeedf00dfeedf00dfeed', decode(repeat('ab', 300), 'hex') FROM generate_series(1, $1::int) i`
	}
	if _, err := s.db.SQL.ExecContext(ctx, q, n, benchDay.Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	if s.db.Dialect == store.Postgres {
		s.db.SQL.ExecContext(ctx, `ANALYZE request_log`)
	}
}

func newBenchStore(b *testing.B, db *store.DB) *Store {
	kek, err := keys.OpenLocalKEK(filepath.Join(b.TempDir(), "kek.json"))
	if err != nil {
		b.Fatal(err)
	}
	s := NewStore(db, keys.NewRing(db, kek))
	db.SetClock(func() time.Time { return benchDay.AddDate(0, 0, 70) })
	return s
}

// BenchmarkRetentionPostgresDropsPartition: expiring a day on PostgreSQL is
// a partition drop, so its time should not grow with the day's row count.
//
//	eval "$(bash .ci/pg start)"; go test -run '^$' -bench RetentionPostgres -benchtime 3x ./internal/reqlog/
func BenchmarkRetentionPostgresDropsPartition(b *testing.B) {
	for _, n := range benchRows() {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				db := storetest.Postgres(b)
				s := newBenchStore(b, db)
				fillDay(b, s, n)
				b.StartTimer()
				start := time.Now()
				res, err := s.Expire(context.Background(), MaxDays)
				total += time.Since(start)
				if err != nil || res.PartitionsDropped != 1 {
					b.Fatalf("%+v %v", res, err)
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/expire")
		})
	}
}

// BenchmarkRetentionSQLiteBatches: on SQLite expiry deletes in batches of
// DeleteBatch. It reports the delete rate and the longest a concurrent
// reader (a tenant listing) and a concurrent writer (one log insert) had to
// wait while it ran.
//
//	go test -run '^$' -bench RetentionSQLite -benchtime 1x ./internal/reqlog/
func BenchmarkRetentionSQLiteBatches(b *testing.B) {
	for _, n := range benchRows() {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				db := storetest.SQLite(b)
				s := newBenchStore(b, db)
				fillDay(b, s, n)
				ctx, cancel := context.WithCancel(context.Background())
				var maxRead, maxWrite atomic.Int64
				var wg sync.WaitGroup
				watch := func(max *atomic.Int64, op func() error) {
					defer wg.Done()
					for ctx.Err() == nil {
						t := time.Now()
						if err := op(); err != nil && ctx.Err() == nil {
							b.Error(err)
							return
						}
						if d := int64(time.Since(t)); d > max.Load() {
							max.Store(d)
						}
						time.Sleep(time.Millisecond)
					}
				}
				wg.Add(2)
				go watch(&maxRead, func() error { _, err := s.List(ctx, "t1", benchDay.AddDate(0, 0, 69), 50); return err })
				live := time.Now()
				go watch(&maxWrite, func() error {
					_, err := db.SQL.ExecContext(ctx, `INSERT INTO request_log (id, day, at, route, method, status, duration_us, bytes_out, request)
						VALUES ($1, $2, $3, 'GET /odata/{source}/Issues', 'GET', 200, 1, 1, x'00')`, NewID(live), keys.Day(live), live)
					live = live.Add(time.Microsecond)
					return err
				})
				b.StartTimer()
				start := time.Now()
				res, err := s.Expire(context.Background(), MaxDays)
				el := time.Since(start)
				b.StopTimer()
				cancel()
				wg.Wait()
				if err != nil || res.RowsDeleted != int64(n) {
					b.Fatalf("%+v %v", res, err)
				}
				b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
				b.ReportMetric(float64(el.Milliseconds()), "ms/expire")
				b.ReportMetric(float64(time.Duration(maxRead.Load()).Microseconds())/1000, "max-read-stall-ms")
				b.ReportMetric(float64(time.Duration(maxWrite.Load()).Microseconds())/1000, "max-write-stall-ms")
			}
		})
	}
}

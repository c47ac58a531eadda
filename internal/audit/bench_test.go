package audit_test

import (
	"context"
	"fmt"
	"testing"

	"ferry/internal/audit"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

func benchEngines(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { fn(b, storetest.Postgres(b)) })
}

// BenchmarkAuditAppend: one recorded event per op, each its own transaction
// (as break-glass and sign-in record them).
func BenchmarkAuditAppend(b *testing.B) {
	benchEngines(b, func(b *testing.B, db *store.DB) {
		f := newFixture(b, db)
		ctx := context.Background()
		b.ResetTimer()
		for i := range b.N {
			if err := f.trail.Record(ctx, audit.Event{Actor: "bench", Role: "support", Action: "reqlog.decrypt", Category: "Logs Data",
				Object: fmt.Sprint(i), Reason: "benchmark of the audit trail", Ticket: "BENCH-1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuditVerify: verifying a trail of 10,000 rows with one
// checkpoint; reported as rows/s.
func BenchmarkAuditVerify(b *testing.B) {
	benchEngines(b, func(b *testing.B, db *store.DB) {
		f := newFixture(b, db)
		ctx := context.Background()
		const rows = 10000
		for i := range rows {
			if err := f.trail.Record(ctx, audit.Event{Actor: "bench", Action: "staff.signin", Category: "Staff accounts", Object: fmt.Sprint(i)}); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := f.trail.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			rep, err := f.trail.Verify(ctx)
			if err != nil || !rep.OK() {
				b.Fatal(err, rep.Problems)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

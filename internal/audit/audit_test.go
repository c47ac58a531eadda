package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"ferry/internal/audit"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

type fixture struct {
	db      *store.DB
	ring    *keys.Ring
	trail   *audit.Trail
	dir     string
	keyFile string
	now     time.Time
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "kek.json")
	kek, err := keys.OpenLocalKEK(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, ring: keys.NewRing(db, kek), dir: filepath.Join(t.TempDir(), "checkpoints"), keyFile: keyFile,
		now: time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)}
	db.SetClock(func() time.Time { return f.now })
	f.trail = audit.New(db, f.ring, audit.DirTarget{Dir: f.dir}, nil)
	return f
}

// fill appends n events with generated contents, one second apart.
func (f *fixture) fill(t *testing.T, rng *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		f.now = f.now.Add(time.Second)
		e := audit.Event{Actor: fmt.Sprintf("staff-%d", rng.IntN(5)), Role: []string{"support", "developer", "admin"}[rng.IntN(3)],
			Action: []string{"reqlog.decrypt", "staff.signin", "console.view"}[rng.IntN(3)], Category: "Logs Data",
			Object: fmt.Sprintf("obj-%d-%d", i, rng.Int()), Reason: strings.Repeat("why ", 1+rng.IntN(5)), Ticket: fmt.Sprintf("SUP-%d", rng.IntN(1000))}
		if rng.IntN(4) == 0 {
			e.Outcome = audit.Refused
		}
		if err := f.trail.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) verify(t *testing.T) audit.Report {
	t.Helper()
	rep, err := f.trail.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// exec runs SQL as someone holding the database would: the append-only
// triggers are dropped first, as such a person can.
func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.db.SQL.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) dropTriggers(t *testing.T) {
	t.Helper()
	if f.db.Dialect == store.SQLite {
		f.exec(t, `DROP TRIGGER audit_trail_no_update`)
		f.exec(t, `DROP TRIGGER audit_trail_no_delete`)
		return
	}
	f.exec(t, `DROP TRIGGER audit_trail_append_only ON audit_trail`)
	f.exec(t, `DROP TRIGGER audit_trail_no_truncate ON audit_trail`)
}

func mustOK(t *testing.T, rep audit.Report, what string) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("%s: verify found %v", what, rep.Problems)
	}
}

func mustBreakAt(t *testing.T, rep audit.Report, seq int64, words, what string) {
	t.Helper()
	if rep.OK() || rep.FirstBroken != seq {
		t.Fatalf("%s: first broken row = %d, want %d (problems %v)", what, rep.FirstBroken, seq, rep.Problems)
	}
	found := false
	for _, p := range rep.Problems {
		if strings.Contains(p.What, words) && strings.Contains(p.What, fmt.Sprint(seq)) {
			found = true
		}
	}
	if !found {
		t.Fatalf("%s: no problem says %q about row %d: %v", what, words, seq, rep.Problems)
	}
}

func TestContractIntactTrailVerifies(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		mustOK(t, f.verify(t), "empty trail")
		f.fill(t, rand.New(rand.NewPCG(1, 2)), 25)
		if _, written, err := f.trail.Checkpoint(context.Background()); err != nil || !written {
			t.Fatalf("checkpoint: %v %v", written, err)
		}
		f.fill(t, rand.New(rand.NewPCG(3, 4)), 5)
		rep := f.verify(t)
		mustOK(t, rep, "intact trail")
		if rep.Rows != 30 || rep.Checkpoints != 1 || rep.Latest.Seq != 25 {
			t.Errorf("report = %d rows, %d checkpoints, latest %+v", rep.Rows, rep.Checkpoints, rep.Latest)
		}
		// A second checkpoint with no new rows writes nothing new.
		if _, written, err := f.trail.Checkpoint(context.Background()); err != nil || !written {
			t.Fatalf("checkpoint after 5 more rows: %v %v", written, err)
		}
		if _, written, err := f.trail.Checkpoint(context.Background()); err != nil || written {
			t.Fatalf("checkpoint with nothing new: written=%v %v", written, err)
		}
	})
}

func TestContractTrailIsAppendOnlyForFerry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.fill(t, rand.New(rand.NewPCG(5, 6)), 3)
		for _, q := range []string{`UPDATE audit_trail SET reason = 'x' WHERE seq = 2`, `DELETE FROM audit_trail WHERE seq = 3`} {
			if _, err := db.SQL.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: %v, want refused as append-only", q, err)
			}
		}
		if db.Dialect == store.Postgres {
			if _, err := db.SQL.Exec(`TRUNCATE audit_trail`); err == nil {
				t.Error("TRUNCATE audit_trail succeeded")
			}
		}
		mustOK(t, f.verify(t), "after refused edits")
	})
}

// Every attack is tried at every row of a generated trail, and undone before
// the next, so each position is checked on its own.
func TestContractVerifyNamesTheFirstBrokenRow(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		const n = 12
		f := newFixture(t, db)
		f.fill(t, rand.New(rand.NewPCG(7, 8)), n)
		f.dropTriggers(t)
		for k := int64(1); k <= n; k++ {
			// Modified: one field of row k changed in place.
			for _, col := range []string{"reason", "actor", "role", "ticket", "object", "outcome"} {
				var old string
				if err := db.SQL.QueryRow(`SELECT `+col+` FROM audit_trail WHERE seq = $1`, k).Scan(&old); err != nil {
					t.Fatal(err)
				}
				nv := old + "!"
				if col == "outcome" {
					nv = map[string]string{"allowed": "refused", "refused": "allowed"}[old]
				}
				f.exec(t, `UPDATE audit_trail SET `+col+` = $1 WHERE seq = $2`, nv, k)
				mustBreakAt(t, f.verify(t), k, "was changed", fmt.Sprintf("modified %s of row %d", col, k))
				f.exec(t, `UPDATE audit_trail SET `+col+` = $1 WHERE seq = $2`, old, k)
			}
			// The time moved by a microsecond.
			f.exec(t, `UPDATE audit_trail SET at = $1 WHERE seq = $2`, f.rowTime(t, k).Add(time.Microsecond), k)
			mustBreakAt(t, f.verify(t), k, "was changed", fmt.Sprintf("modified time of row %d", k))
			f.exec(t, `UPDATE audit_trail SET at = $1 WHERE seq = $2`, f.rowTime(t, k).Add(-time.Microsecond), k)
			mustOK(t, f.verify(t), "restored")

			// Deleted: row k removed. The last row's deletion is a cut-off
			// tail, which only a checkpoint reveals (below).
			if k < n {
				saved := f.saveRow(t, k)
				f.exec(t, `DELETE FROM audit_trail WHERE seq = $1`, k)
				mustBreakAt(t, f.verify(t), k, "is missing", fmt.Sprintf("deleted row %d", k))
				f.restoreRow(t, saved)
				mustOK(t, f.verify(t), "restored")
			}
			// Reordered: rows k and k+1 swap places.
			if k < n {
				f.swap(t, k, k+1)
				mustBreakAt(t, f.verify(t), k, "out of place", fmt.Sprintf("swapped rows %d and %d", k, k+1))
				f.swap(t, k, k+1)
				mustOK(t, f.verify(t), "restored")
			}
		}
	})
}

func (f *fixture) rowTime(t *testing.T, k int64) time.Time {
	t.Helper()
	var at time.Time
	if err := f.db.SQL.QueryRow(`SELECT at FROM audit_trail WHERE seq = $1`, k).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

const cols = `seq, at, actor, role, action, category, tenant_pseudonym, object, reason, ticket, outcome, prev_hash, hash`

func (f *fixture) saveRow(t *testing.T, k int64) []any {
	t.Helper()
	vals := make([]any, 13)
	ptrs := make([]any, 13)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := f.db.SQL.QueryRow(`SELECT `+cols+` FROM audit_trail WHERE seq = $1`, k).Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	return vals
}

func (f *fixture) restoreRow(t *testing.T, vals []any) {
	t.Helper()
	f.exec(t, `INSERT INTO audit_trail (`+cols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`, vals...)
}

func (f *fixture) swap(t *testing.T, a, b int64) {
	t.Helper()
	f.exec(t, `UPDATE audit_trail SET seq = -1 WHERE seq = $1`, a)
	f.exec(t, `UPDATE audit_trail SET seq = $1 WHERE seq = $2`, a, b)
	f.exec(t, `UPDATE audit_trail SET seq = $1 WHERE seq = -1`, b)
}

func TestContractCheckpointRevealsACutOffTail(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.fill(t, rand.New(rand.NewPCG(9, 10)), 20)
		if _, _, err := f.trail.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		f.dropTriggers(t)
		for _, cut := range []int64{1, 2, 7} {
			var saved [][]any
			for k := 20 - cut + 1; k <= 20; k++ {
				saved = append(saved, f.saveRow(t, k))
			}
			f.exec(t, `DELETE FROM audit_trail WHERE seq > $1`, 20-cut)
			mustBreakAt(t, f.verify(t), 20-cut+1, "cut off", fmt.Sprintf("last %d rows deleted", cut))
			for _, s := range saved {
				f.restoreRow(t, s)
			}
			mustOK(t, f.verify(t), "restored")
		}
		// Every row deleted: the checkpoint still counts 20.
		f.exec(t, `DELETE FROM audit_trail`)
		mustBreakAt(t, f.verify(t), 1, "cut off", "whole trail deleted")
		// A new row on the emptied trail chains again, but no checkpoint
		// vouches for it while the cut-off tail stands.
		f.fill(t, rand.New(rand.NewPCG(1, 1)), 1)
		if _, written, err := f.trail.Checkpoint(ctx); !errors.Is(err, audit.ErrBroken) || written {
			t.Errorf("checkpoint of a broken trail: written=%v %v", written, err)
		}
	})
}

// Someone with the database but not the KEK rewrites rows and recomputes
// every hash after them: the chain is whole again, but it no longer matches
// what was signed.
func TestContractRewrittenChainDiffersFromTheSignedCheckpoint(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.fill(t, rand.New(rand.NewPCG(11, 12)), 10)
		if _, _, err := f.trail.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		f.fill(t, rand.New(rand.NewPCG(13, 14)), 10)
		if _, _, err := f.trail.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		f.dropTriggers(t)
		// Rewrite row 14 (after the first checkpoint) and rebuild the chain
		// with the same algorithm Ferry uses: rows are re-appended through a
		// second trail over a copy.
		f.exec(t, `UPDATE audit_trail SET reason = 'nothing to see here' WHERE seq = 14`)
		rechain(t, f)
		rep := f.verify(t)
		// Rows 1–10 still match the first checkpoint, so the damage starts
		// after row 10.
		mustBreakAt(t, rep, 11, "rewritten", "rewritten from row 14")
	})
}

// rechain recomputes prev_hash and hash of every row in order, as an
// attacker would after editing: it re-appends the rows through a fresh trail
// in a scratch table and copies the hashes back.
func rechain(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	rows, err := f.trail.List(ctx, audit.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	scratch := storetest.SQLite(t)
	kek, _ := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	tr := audit.New(scratch, keys.NewRing(scratch, kek), nil, nil)
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		scratch.SetClock(func() time.Time { return r.At })
		rr, err := tr.Append(ctx, audit.Event{Actor: r.Actor, Role: r.Role, Action: r.Action, Category: r.Category,
			Object: r.Object, Reason: r.Reason, Ticket: r.Ticket, Outcome: r.Outcome})
		if err != nil {
			t.Fatal(err)
		}
		f.exec(t, `UPDATE audit_trail SET prev_hash = $1, hash = $2 WHERE seq = $3`, rr.PrevHash, rr.Hash, r.Seq)
	}
}

func TestContractForgedCheckpointsAreNotTrusted(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.fill(t, rand.New(rand.NewPCG(15, 16)), 6)
		c, _, err := f.trail.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(f.dir, fmt.Sprintf("audit-checkpoint-%020d.json", c.Seq))
		orig, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// A checkpoint edited to count fewer rows no longer verifies.
		edited := bytes.Replace(orig, []byte(`"seq": 6`), []byte(`"seq": 5`), 1)
		os.WriteFile(filepath.Join(f.dir, "audit-checkpoint-00000000000000000005.json"), edited, 0o600)
		rep := f.verify(t)
		if rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), "signature does not verify") {
			t.Errorf("edited checkpoint: %v", rep.Problems)
		}
		os.Remove(filepath.Join(f.dir, "audit-checkpoint-00000000000000000005.json"))
		// A signing key slipped into the database without the KEK is not
		// trusted, nor is a checkpoint signed with it.
		f.exec(t, `INSERT INTO audit_keys (id, public_key, private_wrapped, created_at) VALUES ('00112233aabbccdd', $1, $2, $3)`,
			bytes.Repeat([]byte{1}, 32), []byte("not wrapped by the KEK"), f.now)
		rep = f.verify(t)
		if rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), "cannot be unwrapped") {
			t.Errorf("foreign key: %v", rep.Problems)
		}
		// Garbage in the target is reported, not fatal.
		f.exec(t, `DELETE FROM audit_keys WHERE id = '00112233aabbccdd'`)
		os.WriteFile(filepath.Join(f.dir, "audit-checkpoint-00000000000000000099.json"), []byte("{nope"), 0o600)
		rep = f.verify(t)
		if rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), "not a checkpoint") {
			t.Errorf("garbage checkpoint: %v", rep.Problems)
		}
	})
}

func TestContractConcurrentAppendsStayOneChain(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		db.SetClock(nil)
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 15 {
					errs <- f.trail.Record(context.Background(), audit.Event{Actor: fmt.Sprint("w", w), Action: "test.append",
						Category: "Test", Object: fmt.Sprint(i)})
				}
			}()
		}
		go func() { wg.Wait(); close(errs) }()
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		rep := f.verify(t)
		mustOK(t, rep, "concurrent appends")
		if rep.Rows != 90 {
			t.Errorf("rows = %d, want 90", rep.Rows)
		}
	})
}

func TestContractTenantIsKeptOnlyAsAPseudonymThatShreddingUnlinks(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		const tenant = "ten_0123456789abcdef0123456789abcdef"
		if err := f.ring.EnsureTenant(ctx, tenant); err != nil {
			t.Fatal(err)
		}
		if err := f.trail.Record(ctx, audit.Event{Actor: "alice", Role: "support", Action: "reqlog.decrypt", Category: "Logs Data",
			Tenant: tenant, Reason: "checking a 401", Ticket: "SUP-1"}); err != nil {
			t.Fatal(err)
		}
		rows, _ := f.trail.List(ctx, audit.Filter{})
		want, _ := f.trail.TenantPseudonym(ctx, tenant)
		if len(rows) != 1 || rows[0].TenantPseudonym != want || len(want) != keys.PseudonymLen {
			t.Fatalf("rows = %+v, pseudonym %q", rows, want)
		}
		var n int
		db.SQL.QueryRow(`SELECT COUNT(*) FROM audit_trail WHERE tenant_pseudonym LIKE '%' || $1 || '%' OR object LIKE '%' || $1 || '%'`, tenant).Scan(&n)
		if n != 0 {
			t.Error("the raw tenant id is stored in the trail")
		}
		if err := f.ring.Shred(ctx, tenant); err != nil {
			t.Fatal(err)
		}
		if p, _ := f.trail.TenantPseudonym(ctx, tenant); p == want {
			t.Error("after shredding, the tenant's pseudonym can still be computed")
		}
		mustOK(t, f.verify(t), "after shredding")
	})
}

func TestContractBadEventsAreRefusedAndChangeNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, e := range []audit.Event{{}, {Actor: "a", Action: "x"}, {Actor: " ", Action: "x", Category: "c"},
			{Actor: "a", Action: "x", Category: "c", Outcome: "maybe"}} {
			if err := f.trail.Record(context.Background(), e); err == nil {
				t.Errorf("%+v accepted", e)
			}
		}
		if seq, _, _ := f.trail.Head(context.Background()); seq != 0 {
			t.Errorf("head = %d after refused events", seq)
		}
	})
}

// The rows earlier versions wrote to reqlog_access_audit move into the
// chained trail: the database is taken back to just before the audit
// migration, old rows are written, and migrating forward moves them.
func TestContractRequestLogAccessAuditMovesIntoTheTrail(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		gd := goose.DialectSQLite3
		if db.Dialect == store.Postgres {
			gd = goose.DialectPostgres
		}
		p, err := goose.NewProvider(gd, db.SQL, os.DirFS(filepath.Join("..", "store", "migrations", string(db.Dialect))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 29); err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, db)
		const tenant = "ten_aaaa"
		f.ring.EnsureTenant(ctx, tenant)
		old := []struct{ at, entry, op, reason string }{
			{"2026-01-02T03:04:05Z", "20260102-aa", "alice", "ticket 17: 401 on OData feed"},
			{"2026-01-03T03:04:05Z", "20260103-bb", "bob", "ticket 18: slow export"},
		}
		for _, o := range old {
			at, _ := time.Parse(time.RFC3339, o.at)
			f.exec(t, `INSERT INTO reqlog_access_audit (at, entry_id, tenant_id, operator, reason) VALUES ($1, $2, $3, $4, $5)`,
				at, o.entry, tenant, o.op, o.reason)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.Exec(`SELECT 1 FROM reqlog_access_audit`); err == nil {
			t.Error("reqlog_access_audit still exists")
		}
		n, err := f.trail.Adopt(ctx)
		if err != nil || n != 2 {
			t.Fatalf("adopt = %d, %v", n, err)
		}
		if n, _ := f.trail.Adopt(ctx); n != 0 {
			t.Errorf("second adopt moved %d rows", n)
		}
		rows, _ := f.trail.List(ctx, audit.Filter{})
		if len(rows) != 2 {
			t.Fatalf("trail has %d rows", len(rows))
		}
		for i, r := range []audit.Record{rows[1], rows[0]} {
			if r.Action != "reqlog.decrypt" || r.Object != old[i].entry || r.Reason != old[i].reason ||
				r.Actor != "cli:"+old[i].op+" (unverified)" || r.At.Format(time.RFC3339) != old[i].at || r.TenantPseudonym == tenant || r.TenantPseudonym == "" {
				t.Errorf("row %d = %+v", i, r)
			}
		}
		mustOK(t, f.verify(t), "after adopting")
	})
}

// The checkpoint key is sealed with the ring's KEK; registered with the
// ring, it moves with a rotation, the old version can be retired, and the
// checkpoints signed before still verify.
func TestContractSigningKeyFollowsKEKRotationAndRetirement(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.ring.RegisterWrapped("audit signing keys", f.trail)
		f.fill(t, rand.New(rand.NewPCG(21, 22)), 4)
		if _, _, err := f.trail.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := f.trail.UnderKEKVersion(ctx, 1); n != 1 {
			t.Fatalf("%d signing keys under version 1, want 1", n)
		}
		if _, err := f.ring.Rotate(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.ring.Retire(ctx, 1); err != nil {
			t.Fatalf("retire version 1: %v", err)
		}
		f.fill(t, rand.New(rand.NewPCG(23, 24)), 2)
		if _, written, err := f.trail.Checkpoint(ctx); err != nil || !written {
			t.Fatalf("checkpoint after retirement: %v %v", written, err)
		}
		rep := f.verify(t)
		mustOK(t, rep, "after KEK rotation and retirement")
		if rep.Checkpoints != 2 {
			t.Errorf("%d checkpoints verified, want 2", rep.Checkpoints)
		}
	})
}

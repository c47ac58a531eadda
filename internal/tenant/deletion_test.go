package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

const day = 24 * time.Hour

// clock is a fake clock for the database.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(db *store.DB) *clock {
	c := &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	db.SetClock(c.now)
	return c
}
func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// rows is a stand-in area that keeps rows of tenants in memory and
// registers a Deleter for them, as real areas do.
type rows struct {
	mu      sync.Mutex
	n       map[string]int64
	failing int // the next failing Delete calls fail
	deletes int
}

func (r *rows) deleter() tenant.Deleter {
	return tenant.Deleter{Category: "test rows", Tables: []string{"test_rows"},
		Count: func(_ context.Context, id string) (int64, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.n[id], nil
		},
		Delete: func(_ context.Context, id string) (int64, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.deletes++
			if r.failing > 0 {
				r.failing--
				return 0, errors.New("disk on fire")
			}
			n := r.n[id]
			delete(r.n, id)
			return n, nil
		}}
}

// kekOf remembers each test ring's key file, so a test can open a second
// ring on it (another replica).
var kekOf sync.Map // *keys.Ring → *keys.LocalKEK

func purgeSetup(t *testing.T, db *store.DB) (*tenant.Store, *keys.Ring, *tenant.Purger, *rows, *clock) {
	t.Helper()
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(db, kek)
	kekOf.Store(ring, kek)
	s := tenant.NewStore(db, ring)
	c := newClock(db)
	p := tenant.NewPurger(s, ring, nil)
	r := &rows{n: map[string]int64{}}
	p.Register(r.deleter())
	return s, ring, p, r, c
}

// TestContractUninstallThenPurgeOnlyAfterTheGracePeriod: an uninstall marks
// the tenant with purge_after = now + grace; on day 29 the purge leaves
// everything; on day 31 every row goes, the keyset is shredded, and a copy
// of the sealed shared secret taken before no longer decrypts with the key
// store as it then stands.
func TestContractUninstallThenPurgeOnlyAfterTheGracePeriod(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, ring, p, r, c := purgeSetup(t, db)
		if got := s.Policy().Grace; got != 30*day {
			t.Fatalf("default grace %v, want 30 days", got)
		}
		in, _, err := s.Install(ctx, install("ck", "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		if err != nil {
			t.Fatal(err)
		}
		other, _, _ := s.Install(ctx, install("ck-2", "secret-0123456789abcdef0123456789", "https://b.atlassian.net"))
		r.n[in.TenantID], r.n[other.TenantID] = 7, 3
		var sealed []byte
		db.SQL.QueryRow(`SELECT shared_secret FROM installations WHERE tenant_id = $1`, in.TenantID).Scan(&sealed)
		marked := c.now()
		if ch, err := s.Uninstalled(ctx, in.TenantID, tenant.Nonce{}); err != nil || !ch {
			t.Fatalf("uninstall: %v %v", ch, err)
		}
		got, _ := s.ByID(ctx, in.TenantID)
		if got.State != tenant.PendingDeletion || !got.PurgeAfter.Equal(marked.Add(30*day)) || got.DeletionCause != tenant.CauseUninstalled {
			t.Fatalf("after uninstall: %+v", got)
		}
		c.set(marked.Add(29 * day))
		if res, err := p.PurgeDue(ctx); err != nil || len(res.Purged) != 0 {
			t.Fatalf("day 29: %+v %v", res, err)
		}
		if _, err := s.SharedSecret(ctx, in.TenantID); err != nil || r.n[in.TenantID] != 7 {
			t.Fatalf("day 29: the tenant's data must all be there: %v, rows %d", err, r.n[in.TenantID])
		}
		c.set(marked.Add(31 * day))
		res, err := p.PurgeDue(ctx)
		if err != nil || len(res.Purged) != 1 || res.Purged[0] != in.TenantID {
			t.Fatalf("day 31: %+v %v", res, err)
		}
		if _, err := s.ByID(ctx, in.TenantID); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("installation still there: %v", err)
		}
		if _, ok := r.n[in.TenantID]; ok || r.n[other.TenantID] != 3 {
			t.Fatalf("area rows after the purge: %v (the other tenant's must stay)", r.n)
		}
		// The copy taken before: not with this ring, not with a fresh one.
		kek, _ := kekOf.Load(ring)
		for name, rg := range map[string]*keys.Ring{"the ring that purged": ring, "a fresh ring (another replica)": keys.NewRing(db, kek.(*keys.LocalKEK))} {
			if _, err := rg.Decrypt(ctx, in.TenantID, []byte("installations/shared_secret/"+in.TenantID), sealed); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("%s: sealed copy → %v, want ErrShredded", name, err)
			}
		}
		if _, err := s.SharedSecret(ctx, other.TenantID); err != nil {
			t.Fatalf("the other tenant must be untouched: %v", err)
		}
		rec, err := p.Deletion(ctx, in.TenantID)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{tenant.CategoryInstallation: 1, tenant.CategoryKeyset: 1, "test rows": 7}
		if fmt.Sprint(rec.CountsBefore) != fmt.Sprint(want) || rec.Cause != tenant.CauseUninstalled || rec.FinishedAt.IsZero() ||
			!rec.MarkedAt.Equal(marked) || !rec.PurgeAfter.Equal(marked.Add(30*day)) {
			t.Fatalf("deletion record %+v", rec)
		}
		for k, v := range rec.CountsAfter {
			if v != 0 {
				t.Errorf("after the purge %s = %d", k, v)
			}
		}
		if len(rec.CountsAfter) != len(want) {
			t.Errorf("counts after %v", rec.CountsAfter)
		}
		// Running it again changes nothing.
		if res, err := p.PurgeDue(ctx); err != nil || len(res.Purged) != 0 {
			t.Fatalf("second run: %+v %v", res, err)
		}
	})
}

// TestContractReinstallBeforePurgeKeepsEverythingAfterStartsClean.
func TestContractReinstallBeforePurgeKeepsEverythingAfterStartsClean(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, ring, p, r, c := purgeSetup(t, db)
		in, _, _ := s.Install(ctx, install("ck", "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		r.n[in.TenantID] = 5
		start := c.now()
		sealed, _ := ring.Encrypt(ctx, in.TenantID, []byte("ad"), []byte("kept"))
		s.Uninstall(ctx, in.TenantID)
		c.set(start.Add(10 * day))
		back, created, err := s.Install(ctx, install("ck", "secret-2-0123456789abcdef0123456789", "https://a.atlassian.net"))
		if err != nil || created || back.TenantID != in.TenantID || back.State != tenant.Active || !back.PurgeAfter.IsZero() || back.DeletionCause != "" {
			t.Fatalf("day-10 reinstall: created=%v err=%v %+v", created, err, back)
		}
		c.set(start.Add(40 * day))
		if res, _ := p.PurgeDue(ctx); len(res.Purged) != 0 || r.n[in.TenantID] != 5 {
			t.Fatalf("a revived tenant was purged: %+v", res)
		}
		if pt, err := ring.Decrypt(ctx, in.TenantID, []byte("ad"), sealed); err != nil || string(pt) != "kept" {
			t.Fatalf("sealed data of the revived tenant: %q %v", pt, err)
		}

		// Uninstall again; this time the purge runs, then the site comes back.
		s.Uninstall(ctx, in.TenantID)
		c.advance(31 * day)
		if _, err := p.PurgeDue(ctx); err != nil {
			t.Fatal(err)
		}
		fresh, created, err := s.Install(ctx, install("ck", "secret-3-0123456789abcdef0123456789", "https://a.atlassian.net"))
		if err != nil || !created || fresh.TenantID == in.TenantID {
			t.Fatalf("reinstall after the purge: created=%v err=%v %+v", created, err, fresh)
		}
		if n, _ := p.Counts(ctx, fresh.TenantID); n["test rows"] != 0 || n[tenant.CategoryKeyset] != 1 {
			t.Fatalf("the new tenant must start clean with its own keyset: %v", n)
		}
		if _, err := ring.Decrypt(ctx, in.TenantID, []byte("ad"), sealed); !errors.Is(err, keys.ErrShredded) {
			t.Fatalf("old tenant's sealed data: %v", err)
		}
	})
}

// TestContractReinstallPastPurgeAfterStartsCleanEvenBeforeTheJob: once
// purge_after has passed, the data is due; a reinstall that comes before the
// job purges it first.
func TestContractReinstallPastPurgeAfterStartsCleanEvenBeforeTheJob(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _, p, r, c := purgeSetup(t, db)
		in, _, _ := s.Install(ctx, install("ck", "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		r.n[in.TenantID] = 2
		if err := p.RequestDeletion(ctx, in.TenantID, tenant.Deletion{Cause: tenant.CauseSiteAdmin}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.ByID(ctx, in.TenantID)
		if got.State != tenant.PendingDeletion || !got.PurgeAfter.Equal(c.now()) || got.DeletionCause != tenant.CauseSiteAdmin {
			t.Fatalf("immediate deletion: %+v", got)
		}
		c.advance(time.Minute)
		fresh, created, err := s.Install(ctx, install("ck", "secret-2-0123456789abcdef0123456789", "https://a.atlassian.net"))
		if err != nil || !created || fresh.TenantID == in.TenantID {
			t.Fatalf("reinstall: created=%v err=%v", created, err)
		}
		rec, err := p.Deletion(ctx, in.TenantID)
		if err != nil || rec.FinishedAt.IsZero() || rec.Cause != tenant.CauseSiteAdmin || r.n[in.TenantID] != 0 {
			t.Fatalf("the old tenant must be purged first: %+v %v rows=%d", rec, err, r.n[in.TenantID])
		}
	})
}

// TestContractPurgeResumesAfterAFailureHalfWay: an area's deleter fails
// after the installation is gone; the next run finishes from the record.
func TestContractPurgeResumesAfterAFailureHalfWay(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _, p, r, c := purgeSetup(t, db)
		in, _, _ := s.Install(ctx, install("ck", "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		r.n[in.TenantID] = 4
		s.Uninstall(ctx, in.TenantID)
		c.advance(31 * day)
		r.failing = 1
		if _, err := p.PurgeDue(ctx); err == nil {
			t.Fatal("a failing deleter must fail the run")
		}
		rec, err := p.Deletion(ctx, in.TenantID)
		if err != nil || !rec.FinishedAt.IsZero() || rec.CountsBefore["test rows"] != 4 {
			t.Fatalf("unfinished record: %+v %v", rec, err)
		}
		if _, err := s.ByID(ctx, in.TenantID); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatal("the installation goes first, with the record")
		}
		c.advance(time.Hour)
		res, err := p.PurgeDue(ctx)
		if err != nil || len(res.Purged) != 1 {
			t.Fatalf("resumed run: %+v %v", res, err)
		}
		rec, _ = p.Deletion(ctx, in.TenantID)
		if rec.FinishedAt.IsZero() || rec.CountsBefore["test rows"] != 4 || rec.CountsAfter["test rows"] != 0 || rec.CountsAfter[tenant.CategoryKeyset] != 0 {
			t.Fatalf("finished record: %+v", rec)
		}
		if _, ok := r.n[in.TenantID]; ok {
			t.Fatal("rows left")
		}
	})
}

// TestContractLateRowsAreSweptAfterThePurge: a row written for the tenant
// after its purge (another replica's request in flight) goes at the next run.
func TestContractLateRowsAreSweptAfterThePurge(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _, p, r, c := purgeSetup(t, db)
		in, _, _ := s.Install(ctx, install("ck", "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		p.RequestDeletion(ctx, in.TenantID, tenant.Deletion{Cause: tenant.CauseOperator, Reason: "ticket 1234 asks", By: "ops"})
		if _, err := p.PurgeDue(ctx); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		r.n[in.TenantID] = 1 // late
		r.mu.Unlock()
		c.advance(time.Hour)
		if _, err := p.PurgeDue(ctx); err != nil {
			t.Fatal(err)
		}
		if r.n[in.TenantID] != 0 {
			t.Fatal("a late row survived the next run")
		}
		rec, _ := p.Deletion(ctx, in.TenantID)
		if rec.Reason != "ticket 1234 asks" || rec.RequestedBy != "ops" || rec.Cause != tenant.CauseOperator {
			t.Fatalf("operator deletion record: %+v", rec)
		}
	})
}

// TestContractExpiryMarksLapsedLicencesAndLongDisables: the licence is
// asked about each run; inactive for longer than the lapse marks the
// tenant, an unanswerable licence never does, an active one clears the
// count; a disable longer than its period marks too.
func TestContractExpiryMarksLapsedLicencesAndLongDisables(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _, _, _, c := purgeSetup(t, db)
		s.SetPolicy(tenant.Policy{Grace: 30 * day, LicenseLapse: 10 * day, DisabledLapse: 20 * day})
		mk := func(ck string) tenant.Installation {
			in, _, err := s.Install(ctx, install(ck, "secret-0123456789abcdef0123456789", "https://"+ck+".atlassian.net"))
			if err != nil {
				t.Fatal(err)
			}
			return in
		}
		lapsed, renewed, unknown, fine, disabled := mk("lapsed"), mk("renewed"), mk("unknown"), mk("fine"), mk("disabled")
		s.Disable(ctx, disabled.TenantID)
		var mu sync.Mutex
		licence := map[string]error{lapsed.TenantID: nil, renewed.TenantID: nil, unknown.TenantID: errors.New("jira down"), fine.TenantID: nil}
		active := map[string]bool{fine.TenantID: true}
		check := func(_ context.Context, in tenant.Installation) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if in.TenantID == disabled.TenantID {
				t.Error("a disabled tenant's licence cannot be asked (Jira refuses the app's calls)")
			}
			return active[in.TenantID], licence[in.TenantID]
		}
		state := func(in tenant.Installation) tenant.Installation { got, _ := s.ByID(ctx, in.TenantID); return got }
		start := c.now()
		for d := 0; d <= 25; d++ {
			c.set(start.Add(time.Duration(d) * day))
			if d == 5 {
				mu.Lock()
				active[renewed.TenantID] = true // renewed on day 5
				mu.Unlock()
			}
			if d == 7 {
				mu.Lock()
				active[renewed.TenantID] = false // and lapsed again on day 7
				mu.Unlock()
			}
			r, err := s.Expire(ctx, check)
			if err != nil {
				t.Fatal(err)
			}
			if got := state(lapsed); (d >= 10) != (got.State == tenant.PendingDeletion) {
				t.Fatalf("day %d: lapsed licence state %s (result %+v)", d, got.State, r)
			}
			if got := state(renewed); (d >= 17) != (got.State == tenant.PendingDeletion) {
				t.Fatalf("day %d: renewed-then-lapsed state %s", d, got.State)
			}
			if got := state(disabled); (d >= 20) != (got.State == tenant.PendingDeletion) {
				t.Fatalf("day %d: disabled state %s", d, got.State)
			}
			if state(unknown).State != tenant.Active || state(fine).State != tenant.Active {
				t.Fatalf("day %d: a tenant was marked on a licence nobody could check, or an active one", d)
			}
		}
		for _, x := range []struct {
			in    tenant.Installation
			cause tenant.Cause
			day   int
		}{{lapsed, tenant.CauseLicenseInactive, 10}, {renewed, tenant.CauseLicenseInactive, 17}, {disabled, tenant.CauseDisabled, 20}} {
			got := state(x.in)
			if got.DeletionCause != x.cause || !got.PurgeAfter.Equal(start.Add(time.Duration(x.day)*day+30*day)) {
				t.Errorf("%s: cause %s purge after %v", x.in.ClientKey, got.DeletionCause, got.PurgeAfter)
			}
		}
	})
}

// TestContractImmediateDeletionBringsAPendingPurgeForward.
func TestContractImmediateDeletionBringsAPendingPurgeForward(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _, p, _, c := purgeSetup(t, db)
		in, _, _ := s.Install(ctx, install("ck", "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		s.Uninstall(ctx, in.TenantID)
		c.advance(3 * day)
		if err := p.RequestDeletion(ctx, in.TenantID, tenant.Deletion{Cause: tenant.CauseOperator, Reason: "customer e-mail 2026-05-04", By: "ana"}); err != nil {
			t.Fatal(err)
		}
		if res, err := p.PurgeDue(ctx); err != nil || len(res.Purged) != 1 {
			t.Fatalf("%+v %v", res, err)
		}
		if err := p.RequestDeletion(ctx, "ten_nobody", tenant.Deletion{Cause: tenant.CauseOperator}); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("unknown tenant: %v", err)
		}
	})
}

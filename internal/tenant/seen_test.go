package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

func nonce(i int, exp time.Time) tenant.Nonce {
	return tenant.Nonce{Digest: fmt.Sprintf("digest-%04d", i), Expires: exp}
}

// presentConcurrently runs present from n goroutines released together and
// returns the errors.
func presentConcurrently(n int, present func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = present(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner returns the index of the only nil error, failing unless every
// other presentation was refused as a replay.
func oneWinner(t *testing.T, what string, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: presentations %d and %d both succeeded", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, tenant.ErrReplayed):
			t.Fatalf("%s: presentation %d: %v", what, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no presentation succeeded", what)
	}
	return winner
}

// TestContractALifecycleTokenWorksOnceEvenWhenPresentedConcurrently: one
// token presented from eight goroutines at once, with different bodies:
// exactly one presentation changes anything, and what is stored is that
// one's.
func TestContractALifecycleTokenWorksOnceEvenWhenPresentedConcurrently(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		exp := time.Now().Add(3 * time.Minute)
		const n = 8
		secret := func(i int) string { return fmt.Sprintf("secret-%d-0123456789abcdef0123456789", i) }

		// A first install: one tenant, one keyset in use, the winner's secret.
		errs := presentConcurrently(n, func(i int) error {
			in := install("ck-new", secret(i), "https://a.atlassian.net")
			in.Nonce = nonce(1, exp)
			_, _, err := s.Install(ctx, in)
			return err
		})
		w := oneWinner(t, "first install", errs)
		first, err := s.ByClientKey(ctx, "ck-new")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SharedSecret(ctx, first.TenantID); string(got) != secret(w) {
			t.Fatalf("stored secret %q, the winner sent %q", got, secret(w))
		}

		// A reinstall of that tenant.
		errs = presentConcurrently(n, func(i int) error {
			in := install("ck-new", secret(100+i), "https://a.atlassian.net")
			in.Nonce = nonce(2, exp)
			_, _, err := s.Install(ctx, in)
			return err
		})
		w = oneWinner(t, "reinstall", errs)
		if got, _ := s.SharedSecret(ctx, first.TenantID); string(got) != secret(100+w) {
			t.Fatalf("stored secret %q, the winner sent %q", got, secret(100+w))
		}

		// Uninstalled, and the events in general: one token, one change.
		errs = presentConcurrently(n, func(i int) error {
			_, err := s.Record(ctx, first.TenantID, tenant.EventUninstalled, nonce(3, exp))
			return err
		})
		oneWinner(t, "uninstalled", errs)
		errs = presentConcurrently(n, func(i int) error { return s.Consume(ctx, nonce(4, exp)) })
		oneWinner(t, "consume", errs)

		var rows, keysets int
		db.SQL.QueryRow(`SELECT COUNT(*) FROM installations`).Scan(&rows)
		db.SQL.QueryRow(`SELECT COUNT(*) FROM tenant_keys WHERE shredded_at IS NULL`).Scan(&keysets)
		if rows != 1 || keysets != 1 {
			t.Fatalf("%d installations and %d live keysets, want 1 and 1", rows, keysets)
		}
	})
}

// TestContractARefusedInstallLeavesItsTokenUnused: the token is used up
// with the write, in one transaction; an install refused for what its body
// says leaves the token as it was, and the store's record of used tokens
// unchanged.
func TestContractARefusedInstallLeavesItsTokenUnused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		exp := time.Now().Add(3 * time.Minute)
		if _, _, err := s.Install(ctx, install("ck", "site-secret-0123456789abcdef0123456789", "https://a.atlassian.net")); err != nil {
			t.Fatal(err)
		}
		bad := install("ck", "evil-secret-0123456789abcdef0123456789", "https://evil.atlassian.net")
		bad.Nonce = nonce(1, exp)
		if _, _, err := s.Install(ctx, bad); !errors.Is(err, tenant.ErrIdentityChanged) {
			t.Fatalf("moving install: %v", err)
		}
		var seen int
		db.SQL.QueryRow(`SELECT COUNT(*) FROM seen_tokens`).Scan(&seen)
		if seen != 0 {
			t.Fatalf("a refused install recorded %d tokens", seen)
		}
		good := install("ck", "next-secret-0123456789abcdef0123456789", "https://a.atlassian.net")
		good.Nonce = nonce(1, exp)
		if _, _, err := s.Install(ctx, good); err != nil {
			t.Fatalf("the same token with a body that may be applied: %v", err)
		}
		if _, _, err := s.Install(ctx, good); !errors.Is(err, tenant.ErrReplayed) {
			t.Fatalf("then again: %v", err)
		}
	})
}

// TestContractSeenTokensAreForgottenOnlyAfterExpiryAndSlack: with a fake
// clock, 200 tokens with random expiries; the job removes exactly those that
// expired more than SeenTokenSlack ago, computed here independently, and the
// rest are still refused.
func TestContractSeenTokensAreForgottenOnlyAfterExpiryAndSlack(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return now })
		r := rand.New(rand.NewPCG(12, 11))
		exps := make([]time.Time, 200)
		for i := range exps {
			exps[i] = now.Add(time.Duration(r.IntN(3600)-1800) * time.Second)
			if err := s.Consume(ctx, nonce(i, exps[i])); err != nil {
				t.Fatal(err)
			}
		}
		later := now.Add(10 * time.Minute)
		now = later
		wantGone := 0
		for _, e := range exps {
			if e.Before(later.Add(-tenant.SeenTokenSlack)) {
				wantGone++
			}
		}
		if wantGone == 0 || wantGone == len(exps) {
			t.Fatalf("sanity: %d of %d should go", wantGone, len(exps))
		}
		job := tenant.SeenTokensJob(s, nil)
		if job.Name != tenant.SeenTokensJobName || job.Every <= 0 {
			t.Fatalf("job %+v", job)
		}
		if err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
		var left int
		db.SQL.QueryRow(`SELECT COUNT(*) FROM seen_tokens`).Scan(&left)
		if left != len(exps)-wantGone {
			t.Fatalf("%d rows left, want %d", left, len(exps)-wantGone)
		}
		for i, e := range exps {
			err := s.Consume(ctx, nonce(i, e))
			if kept := !e.Before(later.Add(-tenant.SeenTokenSlack)); kept != errors.Is(err, tenant.ErrReplayed) {
				t.Fatalf("token %d (expired %v before the run): kept=%v, consume says %v", i, later.Sub(e), kept, err)
			}
		}
	})
}

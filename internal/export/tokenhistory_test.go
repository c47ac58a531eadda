package export_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/export"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

const (
	bob   = "557058:bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"
	admin = "557058:cccccccc-cccc-cccc-cccc-cccccccccccc"
)

// held records the accounts Tokens asks to hold for Atlassian's reporting.
type held struct{ accounts []string }

func (h *held) Hold(_ context.Context, _, accountID string) error {
	h.accounts = append(h.accounts, accountID)
	return nil
}

// event is a history entry as a test states it: kind, token label, owner, by.
func events(t *testing.T, tokens *export.Tokens, tid string) []string {
	t.Helper()
	list, err := tokens.History(context.Background(), tid, 100)
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for i, e := range list {
		if i > 0 && e.At.After(list[i-1].At) {
			t.Fatalf("history not newest first: %v after %v", e.At, list[i-1].At)
		}
		by := e.ActorAccountID
		if e.ActorErased {
			by = "erased"
		}
		lines = append(lines, line{e.At, fmt.Sprintf("%s %s owner=%s by=%s", e.Kind, e.Label, e.OwnerAccountID, by)})
	}
	// Events of one moment (one transaction) have no order among themselves.
	sort.SliceStable(lines, func(i, j int) bool {
		if !lines[i].at.Equal(lines[j].at) {
			return lines[i].at.After(lines[j].at)
		}
		return lines[i].text < lines[j].text
	})
	var out []string
	for _, l := range lines {
		out = append(out, l.text)
	}
	return out
}

// TestContractTokenHistoryRecordsWhoDidWhatAndWhen: creating, revoking (by
// the owner, by an administrator, all of a user's at once) and expiring are
// each recorded once, in the same transaction as the change, with who did
// it; only an accountId's pseudonym and ciphertext are stored.
func TestContractTokenHistoryRecordsWhoDidWhatAndWhen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tokens, tid := tokenFixture(t, db)
		h := &held{}
		tokens.Accounts = h
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return now })
		tick := func() { now = now.Add(time.Minute) }

		_, a1, _ := tokens.Create(ctx, tid, alice, "a1", 30, 365)
		tick()
		_, a2, _ := tokens.Create(ctx, tid, alice, "a2", 30, 365)
		tick()
		_, b1, _ := tokens.Create(ctx, tid, bob, "b1", 30, 365)
		tick()
		_, b2, _ := tokens.Create(ctx, tid, bob, "b2", 2, 365)
		tick()
		_, b3, _ := tokens.Create(ctx, tid, bob, "b3", 30, 365)
		tick()
		if err := tokens.Revoke(ctx, tid, alice, a1.ID); err != nil {
			t.Fatal(err)
		}
		tick()
		if err := tokens.Revoke(ctx, tid, alice, a1.ID); err != nil { // twice: harmless, recorded once
			t.Fatal(err)
		}
		if err := tokens.RevokeAny(ctx, tid, admin, a2.ID); err != nil {
			t.Fatal(err)
		}
		tick()
		if err := tokens.RevokeAny(ctx, tid, admin, "no-such-token"); apperr.CodeOf(err) != apperr.ENOTFOUND {
			t.Fatalf("revoking an unknown token: %v", err)
		}
		// Bob's b2 expires first (2 days); revoking all of Bob's later ends
		// b1 and b3 only.
		now = now.Add(3 * 24 * time.Hour)
		if rec, del, err := tokens.KeepHistory(ctx); err != nil || rec != 1 || del != 0 {
			t.Fatalf("KeepHistory = %d recorded, %d deleted, %v; want 1, 0", rec, del, err)
		}
		tick()
		n, err := tokens.RevokeOwner(ctx, tid, admin, bob)
		if err != nil || n != 2 {
			t.Fatalf("RevokeOwner = %d, %v; want 2", n, err)
		}
		got := strings.Join(events(t, tokens, tid), "\n")
		want := strings.Join([]string{
			"revoked b1 owner=" + bob + " by=" + admin,
			"revoked b3 owner=" + bob + " by=" + admin,
			"expired b2 owner=" + bob + " by=",
			"revoked a2 owner=" + alice + " by=" + admin,
			"revoked a1 owner=" + alice + " by=" + alice,
			"created b3 owner=" + bob + " by=" + bob,
			"created b2 owner=" + bob + " by=" + bob,
			"created b1 owner=" + bob + " by=" + bob,
			"created a2 owner=" + alice + " by=" + alice,
			"created a1 owner=" + alice + " by=" + alice,
		}, "\n")
		if got != want {
			t.Errorf("history:\n%s\nwant:\n%s", got, want)
		}
		list, _ := tokens.History(ctx, tid, 100)
		if list[2].At != b2.ExpiresAt {
			t.Errorf("expiry recorded at %v, want the token's expiry %v", list[2].At, b2.ExpiresAt)
		}
		for _, id := range []string{alice, bob, admin} {
			var n int
			db.SQL.QueryRow(`SELECT count(*) FROM token_events WHERE actor_pseudonym = $1 OR owner_pseudonym = $1`, id).Scan(&n)
			var enc []byte
			db.SQL.QueryRow(`SELECT actor_enc FROM token_events WHERE actor_enc IS NOT NULL LIMIT 1`).Scan(&enc)
			if n != 0 || strings.Contains(string(enc), id) {
				t.Errorf("accountId %s stored in the clear", id)
			}
		}
		if !strings.Contains(strings.Join(h.accounts, " "), admin) {
			t.Errorf("the administrator's account was not held for reporting: %v", h.accounts)
		}
		// The site's token list shows owner and status.
		all, err := tokens.ListAll(ctx, tid, 365)
		if err != nil {
			t.Fatal(err)
		}
		status := map[string]string{}
		for _, tk := range all {
			status[tk.Label+" "+tk.OwnerAccountID] = tk.Status
		}
		for k, v := range map[string]string{"a1 " + alice: "revoked", "a2 " + alice: "revoked", "b1 " + bob: "revoked", "b2 " + bob: "expired", "b3 " + bob: "revoked"} {
			if status[k] != v {
				t.Errorf("ListAll %s = %q, want %q (all: %v)", k, status[k], v, status)
			}
		}
		_ = b1
		_ = b3
	})
}

// TestContractTokenHistoryIsKeptNinetyDaysPastExpiry: a token's history
// lives until its expiry as issued plus 90 days, to the minute, and the
// policy-capped expiry Authenticate meets is recorded once.
func TestContractTokenHistoryIsKeptNinetyDaysPastExpiry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tokens, tid := tokenFixture(t, db)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		now := start
		db.SetClock(func() time.Time { return now })
		plain, tk, _ := tokens.Create(ctx, tid, alice, "capped", 30, 365)
		_, short, _ := tokens.Create(ctx, tid, bob, "short", 10, 365)
		// Under a 5-day policy the 30-day token expires on day 5: meeting
		// it records the expiry then, not on day 30.
		now = start.Add(6 * 24 * time.Hour)
		for range 3 {
			if _, err := tokens.Authenticate(ctx, plain, policy(5)); !errors.Is(err, export.ErrTokenInvalid) {
				t.Fatalf("capped token: %v", err)
			}
		}
		list, _ := tokens.History(ctx, tid, 100)
		if len(list) != 3 || list[0].Kind != export.EventExpired || !list[0].At.Equal(start.Add(5*24*time.Hour)) {
			t.Fatalf("history after the capped expiry: %+v", list)
		}
		count := func() int64 {
			n, err := tokens.CountTenantHistory(ctx, tid)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Short: expires on day 10, history kept until day 100.
		now = short.ExpiresAt.Add(export.HistoryRetention - time.Minute)
		if _, del, _ := tokens.KeepHistory(ctx); del != 0 || count() != 4 {
			t.Fatalf("a minute before day 100: %d deleted, %d left", del, count())
		}
		now = short.ExpiresAt.Add(export.HistoryRetention)
		if _, del, _ := tokens.KeepHistory(ctx); del != 2 || count() != 2 {
			t.Fatalf("on day 100: %d deleted, %d left, want 2 and 2", del, count())
		}
		// The capped one's history lives until 90 days past its expiry as
		// issued (day 30).
		now = tk.ExpiresAt.Add(export.HistoryRetention)
		if _, del, _ := tokens.KeepHistory(ctx); del != 2 || count() != 0 {
			t.Fatalf("on day 120: %d deleted, %d left", del, count())
		}
	})
}

// TestContractClosedAccountsLeaveTheTokenHistory: a closed account's own
// tokens' history goes; where it revoked others' tokens it is no longer
// named. The purge deletes the rest.
func TestContractClosedAccountsLeaveTheTokenHistory(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tokens, tid := tokenFixture(t, db)
		_, a, _ := tokens.Create(ctx, tid, alice, "alice's", 30, 365)
		_, _, _ = tokens.Create(ctx, tid, admin, "admin's", 30, 365)
		if err := tokens.RevokeAny(ctx, tid, admin, a.ID); err != nil {
			t.Fatal(err)
		}
		p, _ := tokens.Keys.Pseudonym(ctx, tid, admin)
		if _, err := tokens.EraseOwner(ctx, tid, p); err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.EraseFromHistory(ctx, tid, p); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(events(t, tokens, tid), "\n")
		want := "revoked alice's owner=" + alice + " by=erased\ncreated alice's owner=" + alice + " by=" + alice
		if got != want {
			t.Errorf("history after the admin's account closed:\n%s\nwant:\n%s", got, want)
		}
		var n int
		db.SQL.QueryRow(`SELECT count(*) FROM token_events WHERE actor_pseudonym = $1 OR owner_pseudonym = $1`, p).Scan(&n)
		if n != 0 {
			t.Errorf("%d rows still name the closed account's pseudonym", n)
		}
		if del, err := tokens.DeleteTenantHistory(ctx, tid); err != nil || del != 2 {
			t.Fatalf("DeleteTenantHistory = %d, %v", del, err)
		}
	})
}

package atlassian_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/atlassian"
	"ferry/internal/store/storetest"
)

// TestForgedInstallFloodIsShedWithRetryAfter: 400 forged installed
// callbacks, each with valid claims and a kid never seen, reach the handler.
// The key service is asked at most KeyFetchBurst times; the rest are
// answered 503 with Retry-After and nothing is written; an install signed
// with a key already known is accepted meanwhile; and after Retry-After a
// new kid is looked up again.
func TestForgedInstallFloodIsShedWithRetryAfter(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	inst := "/lifecycle/installed"
	f.install(victim, oldSecret, siteURL) // the genuine kid is cached from here on
	fetchesBefore := f.keyFetches.Load()
	before := takeSnapshot(t, db)
	forged := func(i int) (int, string, apperr.Problem) {
		tok := f.installToken(inst, "attacker-"+strconv.Itoa(i), func(h, c map[string]any) { h["kid"] = fmt.Sprintf("forged-%03d", i) })
		w := f.do("POST", inst, tok, payload("installed", "attacker-"+strconv.Itoa(i), "attacker-secret-0123456789abcdef0123456789", siteURL))
		var p apperr.Problem
		json.Unmarshal(w.Body.Bytes(), &p)
		return w.Code, w.Header().Get("Retry-After"), p
	}
	var shed, unknown int
	retryAfter := ""
	for i := 0; i < 400; i++ {
		code, ra, p := forged(i)
		switch {
		case code == 503 && p.Code == apperr.EUNAVAILABLE && ra != "":
			shed++
			retryAfter = ra
		case code == 401 && p.Code == apperr.EUNAUTHORIZED:
			unknown++
		default:
			t.Fatalf("forged install %d: %d %+v (Retry-After %q)", i, code, p, ra)
		}
	}
	fetched := int(f.keyFetches.Load() - fetchesBefore)
	if fetched > atlassian.KeyFetchBurst || fetched != unknown || shed != 400-fetched {
		t.Fatalf("400 forged installs: %d key fetches (limit %d), %d answered 401, %d shed", fetched, atlassian.KeyFetchBurst, unknown, shed)
	}
	if after := takeSnapshot(t, db); after != before {
		t.Fatalf("the flood changed the database: %+v → %+v", before, after)
	}
	// A genuine reinstall, its key known, is not held up by the flood.
	f.advance(time.Second)
	if w := f.do("POST", inst, f.installToken(inst, victim, nil), payload("installed", victim, newSecret, siteURL)); w.Code != 204 {
		t.Fatalf("genuine install during the flood: %d %s", w.Code, w.Body)
	}
	secs, err := strconv.Atoi(retryAfter)
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q", retryAfter)
	}
	f.advance(time.Duration(secs) * time.Second)
	if code, _, _ := forged(1000); code != 401 || int(f.keyFetches.Load()-fetchesBefore) != fetched+1 {
		t.Fatalf("after Retry-After a new kid is looked up again: %d, %d fetches", code, f.keyFetches.Load()-fetchesBefore)
	}
}

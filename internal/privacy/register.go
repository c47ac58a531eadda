// Package privacy keeps the part of the statement's User-Account Data
// promise that concerns Jira users' personal data (P6): Ferry stores
// accountIds only as keyed pseudonyms, tells Atlassian which accounts it
// holds data of through the personal data reporting API, and erases
// everything linked to an account Atlassian reports closed.
//
// A pseudonym is one-way, so what Ferry reports must come from somewhere it
// can be read back: every area that stores a pseudonym of an accountId
// (access tokens, the installing user, request-log users) first calls
// Register.Hold, which keeps one encrypted copy of the accountId per tenant
// and pseudonym in privacy_accounts, used for nothing but reporting
// (DESIGN P6). The Reporter (report.go) reports those accounts in batches
// of at most 90, no more often than Atlassian's Cycle-Period asks, honouring
// 429 Retry-After; a "closed" answer runs every area's Eraser and deletes
// the copy, an "updated" answer is recorded (Ferry caches no profile data to
// refresh).
package privacy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"ferry/internal/keys"
	"ferry/internal/store"
)

// MaxAccountIDLen bounds an accountId Ferry records (Atlassian's are about
// 60 characters).
const MaxAccountIDLen = 128

// holdTTL is how long Hold trusts its memory that an account is recorded,
// so that a busy user costs one database write per process, not one per
// request; another replica's erasure is noticed within this time.
const holdTTL = 10 * time.Minute

// holdCacheMax bounds that memory; past it the cache starts over.
const holdCacheMax = 50000

// Register is the record of the accounts Ferry holds data of.
type Register struct {
	db   *store.DB
	keys *keys.Ring

	mu   sync.Mutex
	seen map[string]time.Time // tenant id \x00 pseudonym → when recorded
}

// NewRegister returns the register over db.
func NewRegister(db *store.DB, ring *keys.Ring) *Register {
	return &Register{db: db, keys: ring, seen: map[string]time.Time{}}
}

// accountAD binds an encrypted accountId to its tenant and pseudonym, so a
// copy moved to another row does not decrypt.
func accountAD(tenantID, pseudonym string) []byte {
	return []byte("privacy_accounts/account_enc/" + tenantID + "/" + pseudonym)
}

// ErrAccountID: not an accountId Ferry will record.
var ErrAccountID = errors.New("privacy: accountId is empty or longer than 128 characters")

// Hold records that Ferry holds data of accountID in tenantID: call it
// before storing the account's pseudonym anywhere. It is idempotent.
func (r *Register) Hold(ctx context.Context, tenantID, accountID string) error {
	if accountID == "" || len(accountID) > MaxAccountIDLen || strings.ContainsAny(accountID, "\x00\r\n") {
		return ErrAccountID
	}
	pseudonym, err := r.keys.Pseudonym(ctx, tenantID, accountID)
	if err != nil {
		return err
	}
	key := tenantID + "\x00" + pseudonym
	now := time.Now()
	r.mu.Lock()
	at, ok := r.seen[key]
	r.mu.Unlock()
	if ok && now.Sub(at) < holdTTL {
		return nil
	}
	enc, err := r.keys.Encrypt(ctx, tenantID, accountAD(tenantID, pseudonym), []byte(accountID))
	if err != nil {
		return err
	}
	if err := r.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO privacy_accounts (tenant_id, pseudonym, account_enc, held_since, data_as_of, next_report_at)
			VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (tenant_id, pseudonym) DO NOTHING`, tenantID, pseudonym, enc, tx.Now())
		return err
	}); err != nil {
		return fmt.Errorf("privacy: record held account: %w", err)
	}
	r.mu.Lock()
	if len(r.seen) >= holdCacheMax {
		clear(r.seen)
	}
	r.seen[key] = now
	r.mu.Unlock()
	return nil
}

// forget drops the memory of accounts of a tenant (all of them when
// pseudonym is empty).
func (r *Register) forget(tenantID, pseudonym string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pseudonym != "" {
		delete(r.seen, tenantID+"\x00"+pseudonym)
		return
	}
	for k := range r.seen {
		if strings.HasPrefix(k, tenantID+"\x00") {
			delete(r.seen, k)
		}
	}
}

// ForgetTenant drops what is remembered of a purged tenant.
func (r *Register) ForgetTenant(tenantID string) { r.forget(tenantID, "") }

// Held reports how many accounts are recorded for a tenant.
func (r *Register) Held(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := r.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM privacy_accounts WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

// CountTenant counts a tenant's rows in the privacy tables (the purge's
// deletion record).
func (r *Register) CountTenant(ctx context.Context, tenantID string) (int64, error) {
	var a, b int64
	if err := r.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM privacy_accounts WHERE tenant_id = $1`, tenantID).Scan(&a); err != nil {
		return 0, err
	}
	if err := r.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM privacy_account_events WHERE tenant_id = $1`, tenantID).Scan(&b); err != nil {
		return 0, err
	}
	return a + b, nil
}

// DeleteTenant deletes a tenant's rows in the privacy tables (the purge).
func (r *Register) DeleteTenant(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		for _, q := range []string{`DELETE FROM privacy_accounts WHERE tenant_id = $1`, `DELETE FROM privacy_account_events WHERE tenant_id = $1`} {
			res, err := tx.ExecContext(ctx, q, tenantID)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	if err == nil {
		r.ForgetTenant(tenantID)
	}
	return n, err
}

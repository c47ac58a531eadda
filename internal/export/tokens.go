package export

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"ferry/internal/apperr"
	"ferry/internal/keys"
	"ferry/internal/store"
)

// TokenPrefix makes Ferry tokens recognisable to people and secret scanners.
const TokenPrefix = "fry_"

// MaxActiveTokens is how many unrevoked, unexpired tokens one user may hold.
const MaxActiveTokens = 25

// Token is an access token as listed to its owner; never the secret itself.
type Token struct {
	ID          string
	TenantID    string
	Label       string
	Hint        string // "fry_AbCd…"
	CreatedAt   time.Time
	ExpiresAt   time.Time // already capped by the current policy
	LastUsedDay string    // YYYY-MM-DD or ""
	RevokedAt   *time.Time
}

// Owner is who a presented token acts as.
type Owner struct {
	TokenID   string
	TenantID  string
	AccountID string // decrypted for this request only; never stored in the clear
	Pseudonym string
}

// Tokens stores personal access tokens.
type Tokens struct {
	DB   *store.DB
	Keys *keys.Ring
	// Accounts, when set, records each token owner's account so that it is
	// reported to Atlassian (privacy.Register): Ferry keeps its pseudonym.
	Accounts interface {
		Hold(ctx context.Context, tenantID, accountID string) error
	}

	// seen keeps, for tokenTTL, the rows of tokens that authenticated, so
	// that a BI tool's many requests do not each query the database. A
	// revocation or deletion through this Tokens drops them at once; one
	// made by another replica takes effect within tokenTTL.
	seenMu sync.Mutex
	seen   map[string]seenToken
}

// tokenTTL is how long an authenticated token's row is trusted in memory.
const tokenTTL = 2 * time.Second

type seenToken struct {
	o                Owner
	created, expires time.Time
	lastUsed         string
	at               time.Time
}

func (t *Tokens) forgetSeen(match func(seenToken) bool) {
	t.seenMu.Lock()
	defer t.seenMu.Unlock()
	for k, v := range t.seen {
		if match(v) {
			delete(t.seen, k)
		}
	}
}

// Errors a token holder can see: deliberately not saying which of unknown,
// revoked or expired applies to an unknown token holder.
var (
	ErrTokenInvalid  = apperr.New(apperr.EUNAUTHORIZED, "The access token is unknown, revoked or expired. Create a new token in the Ferry app in Jira.")
	ErrTooManyTokens = apperr.New(apperr.ECONFLICT, "You already have %d active tokens. Revoke one before creating another.", MaxActiveTokens)
)

func hashToken(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

func ownerAD(id string) []byte { return []byte("access_tokens/owner_enc/" + id) }

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create makes a token for the user, valid for days (capped by maxDays).
// The plaintext is returned once and never stored.
func (t *Tokens) Create(ctx context.Context, tenantID, accountID, label string, days, maxDays int) (string, Token, error) {
	label = strings.TrimSpace(label)
	if label == "" || utf8.RuneCountInString(label) > 80 {
		return "", Token{}, apperr.Invalid("label", "Give the token a name of 1 to 80 characters, such as \"Power BI laptop\".")
	}
	if days <= 0 {
		days = maxDays
	}
	if days > maxDays {
		return "", Token{}, apperr.Invalid("days", "Tokens may last at most %d days under your site's policy.", maxDays)
	}
	pseudo, err := t.Keys.Pseudonym(ctx, tenantID, accountID)
	if err != nil {
		return "", Token{}, err
	}
	if t.Accounts != nil {
		if err := t.Accounts.Hold(ctx, tenantID, accountID); err != nil {
			return "", Token{}, err
		}
	}
	secret := make([]byte, 32) // 256 bits: unguessable, so a plain SHA-256 is a safe hash
	rand.Read(secret)
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	id := newID()
	enc, err := t.Keys.Encrypt(ctx, tenantID, ownerAD(id), []byte(accountID))
	if err != nil {
		return "", Token{}, err
	}
	ev, err := t.newEvent(ctx, tenantID, accountID)
	if err != nil {
		return "", Token{}, err
	}
	var tok Token
	err = t.DB.InTx(ctx, func(tx *store.Tx) error {
		var active int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM access_tokens
			WHERE tenant_id = $1 AND owner_pseudonym = $2 AND revoked_at IS NULL AND expires_at > $3`,
			tenantID, pseudo, tx.Now()).Scan(&active); err != nil {
			return err
		}
		if active >= MaxActiveTokens {
			return ErrTooManyTokens
		}
		tok = Token{ID: id, TenantID: tenantID, Label: label, Hint: plain[:len(TokenPrefix)+4] + "…",
			CreatedAt: tx.Now(), ExpiresAt: tx.Now().AddDate(0, 0, days)}
		_, err := tx.ExecContext(ctx, `INSERT INTO access_tokens
			(id, tenant_id, owner_pseudonym, owner_enc, label, token_hash, token_hint, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id, tenantID, pseudo, enc, label, hashToken(plain), tok.Hint, tok.CreatedAt, tok.ExpiresAt)
		if err != nil {
			return err
		}
		return ev.insert(ctx, tx, tenantID, id, pseudo, EventCreated, tok.CreatedAt, tok.ExpiresAt)
	})
	if err != nil {
		return "", Token{}, err
	}
	return plain, tok, nil
}

// List returns the user's tokens, newest first, with expiry capped by maxDays.
func (t *Tokens) List(ctx context.Context, tenantID, accountID string, maxDays int) ([]Token, error) {
	pseudo, err := t.Keys.Pseudonym(ctx, tenantID, accountID)
	if err != nil {
		return nil, err
	}
	rows, err := t.DB.SQL.QueryContext(ctx, `SELECT id, label, token_hint, created_at, expires_at, last_used_day, revoked_at
		FROM access_tokens WHERE tenant_id = $1 AND owner_pseudonym = $2 ORDER BY created_at DESC, id`, tenantID, pseudo)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		tk := Token{TenantID: tenantID}
		var last sql.NullString
		var revoked sql.NullTime
		if err := rows.Scan(&tk.ID, &tk.Label, &tk.Hint, &tk.CreatedAt, &tk.ExpiresAt, &last, &revoked); err != nil {
			return nil, err
		}
		tk.CreatedAt, tk.ExpiresAt = tk.CreatedAt.UTC(), capExpiry(tk.CreatedAt, tk.ExpiresAt, maxDays).UTC()
		tk.LastUsedDay = last.String
		if revoked.Valid {
			r := revoked.Time.UTC()
			tk.RevokedAt = &r
		}
		out = append(out, tk)
	}
	return out, rows.Err()
}

// capExpiry applies the current policy: shortening it caps existing tokens.
func capExpiry(created, expires time.Time, maxDays int) time.Time {
	if limit := created.AddDate(0, 0, maxDays); limit.Before(expires) {
		return limit
	}
	return expires
}

// Revoke ends one of the user's own tokens. Revoking twice is harmless.
func (t *Tokens) Revoke(ctx context.Context, tenantID, accountID, id string) error {
	pseudo, err := t.Keys.Pseudonym(ctx, tenantID, accountID)
	if err != nil {
		return err
	}
	n, err := t.revoke(ctx, tenantID, accountID, `id = $2 AND owner_pseudonym = $3`, id, pseudo)
	if err == nil && n == 0 {
		err = t.exists(ctx, tenantID, `id = $2 AND owner_pseudonym = $3`, id, pseudo)
	}
	return err
}

// RevokeAny ends any token of the site: a Jira administrator's action (the
// caller checks), recorded with who did it.
func (t *Tokens) RevokeAny(ctx context.Context, tenantID, byAccountID, id string) error {
	n, err := t.revoke(ctx, tenantID, byAccountID, `id = $2`, id)
	if err == nil && n == 0 {
		err = t.exists(ctx, tenantID, `id = $2`, id)
	}
	return err
}

// RevokeOwner ends every live token of one user (a Jira administrator's
// action) and returns how many it ended.
func (t *Tokens) RevokeOwner(ctx context.Context, tenantID, byAccountID, ownerAccountID string) (int, error) {
	pseudo, err := t.Keys.Pseudonym(ctx, tenantID, ownerAccountID)
	if err != nil {
		return 0, err
	}
	return t.revoke(ctx, tenantID, byAccountID, `owner_pseudonym = $2 AND expires_at > $3`, pseudo, t.DB.Now())
}

func (t *Tokens) exists(ctx context.Context, tenantID, cond string, args ...any) error {
	var n int
	if err := t.DB.SQL.QueryRowContext(ctx, `SELECT count(*) FROM access_tokens WHERE tenant_id = $1 AND `+cond,
		append([]any{tenantID}, args...)...).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return apperr.New(apperr.ENOTFOUND, "No such token.")
	}
	return nil
}

// revoke ends the live tokens matching cond ($2…) and records, in the same
// transaction, one history event each with who did it.
func (t *Tokens) revoke(ctx context.Context, tenantID, byAccountID, cond string, args ...any) (int, error) {
	if t.Accounts != nil {
		if err := t.Accounts.Hold(ctx, tenantID, byAccountID); err != nil {
			return 0, err
		}
	}
	ev, err := t.newEvent(ctx, tenantID, byAccountID)
	if err != nil {
		return 0, err
	}
	n := 0
	var revoked []string
	err = t.DB.InTx(ctx, func(tx *store.Tx) error {
		n, revoked = 0, revoked[:0]
		rows, err := tx.QueryContext(ctx, `SELECT id, owner_pseudonym, expires_at FROM access_tokens
			WHERE tenant_id = $1 AND revoked_at IS NULL AND `+cond, append([]any{tenantID}, args...)...)
		if err != nil {
			return err
		}
		type live struct {
			id, owner string
			expires   time.Time
		}
		var found []live
		for rows.Next() {
			var l live
			if err := rows.Scan(&l.id, &l.owner, &l.expires); err != nil {
				rows.Close()
				return err
			}
			found = append(found, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for k, l := range found {
			res, err := tx.ExecContext(ctx, `UPDATE access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, l.id, tx.Now())
			if err != nil {
				return err
			}
			if c, _ := res.RowsAffected(); c == 0 {
				continue
			}
			e := ev
			if k > 0 {
				if e, err = ev.again(ctx, t, tenantID); err != nil {
					return err
				}
			}
			if err := e.insert(ctx, tx, tenantID, l.id, l.owner, EventRevoked, tx.Now(), l.expires); err != nil {
				return err
			}
			revoked = append(revoked, l.id)
			n++
		}
		return nil
	})
	// Whatever the outcome, tokens it may have revoked are read again.
	t.forgetSeen(func(s seenToken) bool { return slices.Contains(revoked, s.o.TokenID) })
	return n, err
}

// Authenticate resolves a presented token to its owner. maxDays returns the
// tenant's current policy (it lives in the tenant's Jira).
func (t *Tokens) Authenticate(ctx context.Context, presented string, maxDays func(tenantID string) int) (Owner, error) {
	if !strings.HasPrefix(presented, TokenPrefix) || len(presented) != len(TokenPrefix)+43 {
		return Owner{}, ErrTokenInvalid
	}
	h := hashToken(presented)
	now := t.DB.Now()
	t.seenMu.Lock()
	st, ok := t.seen[h]
	t.seenMu.Unlock()
	if ok && time.Since(st.at) < tokenTTL && now.Before(capExpiry(st.created, st.expires, maxDays(st.o.TenantID))) {
		return st.o, nil // an expired one is read again, so its expiry is recorded
	}
	var o Owner
	var storedHash string
	var enc []byte
	var created, expires time.Time
	var revoked sql.NullTime
	var last sql.NullString
	err := t.DB.SQL.QueryRowContext(ctx, `SELECT id, tenant_id, owner_pseudonym, owner_enc, token_hash, created_at, expires_at, revoked_at, last_used_day
		FROM access_tokens WHERE token_hash = $1`, h).Scan(&o.TokenID, &o.TenantID, &o.Pseudonym, &enc, &storedHash, &created, &expires, &revoked, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return Owner{}, ErrTokenInvalid
	}
	if err != nil {
		return Owner{}, err
	}
	// The lookup was by hash; compare again in constant time for good measure.
	if subtle.ConstantTimeCompare([]byte(storedHash), []byte(h)) != 1 {
		return Owner{}, ErrTokenInvalid
	}
	if revoked.Valid {
		return Owner{}, ErrTokenInvalid
	}
	if ends := capExpiry(created, expires, maxDays(o.TenantID)); !now.Before(ends) {
		// Expired, perhaps early under a shorter policy: the history says when.
		_ = t.recordExpiry(ctx, o.TenantID, o.TokenID, o.Pseudonym, ends, expires)
		return Owner{}, ErrTokenInvalid
	}
	acct, err := t.Keys.Decrypt(ctx, o.TenantID, ownerAD(o.TokenID), enc)
	if errors.Is(err, keys.ErrShredded) {
		return Owner{}, ErrTokenInvalid
	}
	if err != nil {
		return Owner{}, fmt.Errorf("token owner: %w", err)
	}
	o.AccountID = string(acct)
	// One write per token per day at most, not one per request.
	if day := keys.Day(now); last.String != day {
		_ = t.DB.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE access_tokens SET last_used_day = $2 WHERE id = $1`, o.TokenID, day)
			return err
		})
		last.String = day
	}
	t.seenMu.Lock()
	if t.seen == nil || len(t.seen) > 10000 {
		t.seen = map[string]seenToken{}
	}
	t.seen[h] = seenToken{o: o, created: created, expires: expires, lastUsed: last.String, at: time.Now()}
	t.seenMu.Unlock()
	return o, nil
}

// CountTenant counts a tenant's access tokens (for the deletion record).
func (t *Tokens) CountTenant(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := t.DB.SQL.QueryRowContext(ctx, `SELECT count(*) FROM access_tokens WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

// DeleteTenant deletes every access token of a tenant (the purge).
func (t *Tokens) DeleteTenant(ctx context.Context, tenantID string) (int64, error) {
	defer t.forgetSeen(func(s seenToken) bool { return s.o.TenantID == tenantID })
	return t.exec(ctx, `DELETE FROM access_tokens WHERE tenant_id = $1`, tenantID)
}

// EraseOwner deletes every token of one owner, named by pseudonym: the
// owner's Atlassian account was closed. Its feeds stop at once.
func (t *Tokens) EraseOwner(ctx context.Context, tenantID, pseudonym string) (int64, error) {
	defer t.forgetSeen(func(s seenToken) bool { return s.o.TenantID == tenantID && s.o.Pseudonym == pseudonym })
	return t.exec(ctx, `DELETE FROM access_tokens WHERE tenant_id = $1 AND owner_pseudonym = $2`, tenantID, pseudonym)
}

// EraseFromHistory removes a closed account from the token history: the
// history of its own tokens goes, and where it acted on others' tokens it
// is no longer named (the event stays, by "a former user").
func (t *Tokens) EraseFromHistory(ctx context.Context, tenantID, pseudonym string) (int64, error) {
	var n int64
	err := t.DB.InTx(ctx, func(tx *store.Tx) error {
		for _, q := range []string{
			`DELETE FROM token_events WHERE tenant_id = $1 AND owner_pseudonym = $2`,
			`UPDATE token_events SET actor_pseudonym = '', actor_enc = NULL WHERE tenant_id = $1 AND actor_pseudonym = $2`,
		} {
			res, err := tx.ExecContext(ctx, q, tenantID, pseudonym)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}

func (t *Tokens) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := t.DB.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

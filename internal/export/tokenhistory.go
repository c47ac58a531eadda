package export

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"ferry/internal/jobs"
	"ferry/internal/store"
)

// Site administrators see every access token of their site and its history:
// created, revoked, expired — by whom, when (token_events). Who is kept as a
// pseudonym and as the accountId encrypted under the tenant key, so that the
// admin page shows a display name fetched from Jira at view time and the
// purge's shredding makes the rows unreadable. A history row is kept until
// 90 days after its token's expiry (HistoryRetention, job
// export.token-history).

// Kinds of token history events.
const (
	EventCreated = "created"
	EventRevoked = "revoked"
	EventExpired = "expired"
)

// HistoryRetention is how long a token's history outlives its expiry.
const HistoryRetention = 90 * 24 * time.Hour

// HistoryJobName is the job that records expiries and ends old history.
const HistoryJobName = "export.token-history"

func actorAD(eventID string) []byte { return []byte("token_events/actor_enc/" + eventID) }

// event is one history row about to be written, its actor sealed.
type event struct {
	id        string
	actor     string // accountId, memory only
	pseudonym sql.NullString
	enc       []byte
}

// newEvent prepares an event by actor (an accountId; "" for Ferry itself).
// The sealing happens outside any transaction: SQLite allows one writer.
func (t *Tokens) newEvent(ctx context.Context, tenantID, actor string) (event, error) {
	e := event{id: newID(), actor: actor}
	if actor == "" {
		return e, nil
	}
	p, err := t.Keys.Pseudonym(ctx, tenantID, actor)
	if err != nil {
		return e, err
	}
	e.pseudonym = sql.NullString{String: p, Valid: true}
	if e.enc, err = t.Keys.Encrypt(ctx, tenantID, actorAD(e.id), []byte(actor)); err != nil {
		return e, err
	}
	return e, nil
}

// again is the same actor's next event (a new id, sealed anew).
func (e event) again(ctx context.Context, t *Tokens, tenantID string) (event, error) {
	return t.newEvent(ctx, tenantID, e.actor)
}

// insert writes the event; a second event of the same kind for a token is
// ignored (revoking or expiring happens once).
func (e event) insert(ctx context.Context, tx *store.Tx, tenantID, tokenID, ownerPseudonym, kind string, at, expires time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO token_events
		(id, tenant_id, token_id, owner_pseudonym, kind, actor_pseudonym, actor_enc, at, keep_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (token_id, kind) DO NOTHING`,
		e.id, tenantID, tokenID, ownerPseudonym, kind, e.pseudonym, e.enc, at.UTC(), expires.Add(HistoryRetention).UTC())
	return err
}

// recordExpiry notes that a token expired at at (Ferry's doing, no actor).
func (t *Tokens) recordExpiry(ctx context.Context, tenantID, tokenID, ownerPseudonym string, at, expires time.Time) error {
	if !t.DB.Now().Before(expires.Add(HistoryRetention)) {
		return nil // its history would already be over
	}
	e := event{id: newID()}
	return t.DB.InTx(ctx, func(tx *store.Tx) error {
		return e.insert(ctx, tx, tenantID, tokenID, ownerPseudonym, EventExpired, at, expires)
	})
}

// SiteToken is a token as a site administrator sees it.
type SiteToken struct {
	Token
	OwnerAccountID string // decrypted for this view only
	Status         string // active | revoked | expired
}

// tokenStatus is what a token is now, under the current policy.
func tokenStatus(tk Token, now time.Time) string {
	switch {
	case tk.RevokedAt != nil:
		return EventRevoked
	case !now.Before(tk.ExpiresAt):
		return EventExpired
	}
	return "active"
}

// ListAll returns every token of the site, newest first, with its owner
// (expiry capped by maxDays, as for the owner).
func (t *Tokens) ListAll(ctx context.Context, tenantID string, maxDays int) ([]SiteToken, error) {
	rows, err := t.DB.SQL.QueryContext(ctx, `SELECT id, owner_enc, label, token_hint, created_at, expires_at, last_used_day, revoked_at
		FROM access_tokens WHERE tenant_id = $1 ORDER BY created_at DESC, id`, tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type row struct {
		tk  SiteToken
		enc []byte
	}
	var all []row
	for rows.Next() {
		var r row
		var last sql.NullString
		var revoked sql.NullTime
		r.tk.TenantID = tenantID
		if err := rows.Scan(&r.tk.ID, &r.enc, &r.tk.Label, &r.tk.Hint, &r.tk.CreatedAt, &r.tk.ExpiresAt, &last, &revoked); err != nil {
			return nil, err
		}
		r.tk.CreatedAt, r.tk.ExpiresAt = r.tk.CreatedAt.UTC(), capExpiry(r.tk.CreatedAt, r.tk.ExpiresAt, maxDays).UTC()
		r.tk.LastUsedDay = last.String
		if revoked.Valid {
			at := revoked.Time.UTC()
			r.tk.RevokedAt = &at
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	now := t.DB.Now()
	out := make([]SiteToken, 0, len(all))
	for _, r := range all {
		acct, err := t.Keys.Decrypt(ctx, tenantID, ownerAD(r.tk.ID), r.enc)
		if err != nil {
			return nil, fmt.Errorf("token owner: %w", err)
		}
		r.tk.OwnerAccountID = string(acct)
		r.tk.Status = tokenStatus(r.tk.Token, now)
		out = append(out, r.tk)
	}
	return out, nil
}

// TokenEvent is one entry of the token history, as administrators see it.
type TokenEvent struct {
	Kind           string
	At             time.Time
	TokenID        string
	Label, Hint    string // "" once the token itself is gone
	OwnerAccountID string // "" once the token itself is gone
	// ActorAccountID is who did it; ActorErased is a closed account's doing;
	// neither is Ferry's own (an expiry).
	ActorAccountID string
	ActorErased    bool
}

// History returns the site's token history, newest first, at most limit.
func (t *Tokens) History(ctx context.Context, tenantID string, limit int) ([]TokenEvent, error) {
	rows, err := t.DB.SQL.QueryContext(ctx, `SELECT e.id, e.kind, e.at, e.token_id, e.actor_pseudonym, e.actor_enc,
			COALESCE(a.label, ''), COALESCE(a.token_hint, ''), a.owner_enc
		FROM token_events e LEFT JOIN access_tokens a ON a.id = e.token_id AND a.tenant_id = e.tenant_id
		WHERE e.tenant_id = $1 ORDER BY e.at DESC, e.id LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type row struct {
		ev            TokenEvent
		id            string
		actor         sql.NullString
		actorEnc, own []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.ev.Kind, &r.ev.At, &r.ev.TokenID, &r.actor, &r.actorEnc, &r.ev.Label, &r.ev.Hint, &r.own); err != nil {
			return nil, err
		}
		r.ev.At = r.ev.At.UTC()
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	out := make([]TokenEvent, 0, len(all))
	for _, r := range all {
		if r.own != nil {
			acct, err := t.Keys.Decrypt(ctx, tenantID, ownerAD(r.ev.TokenID), r.own)
			if err != nil {
				return nil, fmt.Errorf("token owner: %w", err)
			}
			r.ev.OwnerAccountID = string(acct)
		}
		switch {
		case r.actor.Valid && r.actor.String == "":
			r.ev.ActorErased = true
		case r.actorEnc != nil:
			acct, err := t.Keys.Decrypt(ctx, tenantID, actorAD(r.id), r.actorEnc)
			if err != nil {
				return nil, fmt.Errorf("token history actor: %w", err)
			}
			r.ev.ActorAccountID = string(acct)
		}
		out = append(out, r.ev)
	}
	return out, nil
}

// KeepHistory records the expiry of every token whose time has come
// (revoked ones excepted; none whose history would already be over) and
// deletes history past its keep_until. It
// returns how many expiries it recorded and rows it deleted.
func (t *Tokens) KeepHistory(ctx context.Context) (recorded, deleted int64, err error) {
	now := t.DB.Now()
	rows, err := t.DB.SQL.QueryContext(ctx, `SELECT a.id, a.tenant_id, a.owner_pseudonym, a.expires_at FROM access_tokens a
		WHERE a.expires_at <= $1 AND a.expires_at > $2 AND a.revoked_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM token_events e WHERE e.token_id = a.id AND e.kind = 'expired')`, now, now.Add(-HistoryRetention))
	if err != nil {
		return 0, 0, err
	}
	type due struct {
		id, tenant, owner string
		expires           time.Time
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.tenant, &d.owner, &d.expires); err != nil {
			rows.Close()
			return 0, 0, err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, d := range list {
		if err := t.recordExpiry(ctx, d.tenant, d.id, d.owner, d.expires, d.expires); err != nil {
			return recorded, 0, err
		}
		recorded++
	}
	deleted, err = t.exec(ctx, `DELETE FROM token_events WHERE keep_until <= $1`, now)
	return recorded, deleted, err
}

// HistoryJob runs KeepHistory hourly.
func HistoryJob(t *Tokens, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  HistoryJobName,
		Doc:   "record access tokens' expiries in the token history and delete history 90 days past its token's expiry",
		Every: time.Hour,
		Run: func(ctx context.Context) error {
			rec, del, err := t.KeepHistory(ctx)
			if log != nil {
				log.Info("token history", "expiries", rec, "deleted", del)
			}
			return err
		},
	}
}

// CountTenantHistory counts a tenant's token history (the deletion record).
func (t *Tokens) CountTenantHistory(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := t.DB.SQL.QueryRowContext(ctx, `SELECT count(*) FROM token_events WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

// DeleteTenantHistory deletes a tenant's token history (the purge).
func (t *Tokens) DeleteTenantHistory(ctx context.Context, tenantID string) (int64, error) {
	return t.exec(ctx, `DELETE FROM token_events WHERE tenant_id = $1`, tenantID)
}

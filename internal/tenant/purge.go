package tenant

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"ferry/internal/audit"
	"ferry/internal/jobs"
	"ferry/internal/keys"
	"ferry/internal/store"
)

// The purge deletes every row of a tenant in every table and then shreds the
// tenant's keyset, so that a copy of its sealed values kept anywhere (a
// backup, a replica) can no longer be read. Each area that keeps rows of a
// tenant registers a Deleter (internal/cli/app.go); a table with a tenant
// column that has neither a Deleter nor a reasoned exemption fails a test
// that reads the migrated schema of both engines.
//
// The purge of one tenant, in steps that can each be repeated:
//  1. count every data category (the deletion record's counts_before);
//  2. in one transaction, delete the installation (only if it is still
//     pending deletion and past purge_after, so a concurrent reinstall wins
//     or loses cleanly) and write the deletion record, unfinished;
//  3. run every area's Deleter;
//  4. shred the keyset;
//  5. count again and finish the record.
//
// From step 2 on the tenant exists only in tenant_deletions, and a reinstall
// of the site starts clean with a new tenant id. A purge that stopped after
// step 2 (a crash, a failed deleter) is finished by the next run from the
// unfinished record.

// Deleter deletes one area's rows of a tenant.
type Deleter struct {
	Category string   // the data category the deletion record counts, e.g. "access tokens"
	Tables   []string // the tables whose rows of the tenant it deletes
	Count    func(ctx context.Context, tenantID string) (int64, error)
	Delete   func(ctx context.Context, tenantID string) (int64, error)
}

// Categories the tenant package itself counts.
const (
	CategoryInstallation = "installation (account data)"
	CategoryKeyset       = "tenant keyset"
)

// Record is a tenant's deletion record. It holds no personal data.
type Record struct {
	TenantID     string
	Cause        Cause
	Reason       string // an operator's reason
	RequestedBy  string // an operator's name
	MarkedAt     time.Time
	PurgeAfter   time.Time
	StartedAt    time.Time
	FinishedAt   time.Time // zero while unfinished
	CountsBefore map[string]int64
	CountsAfter  map[string]int64
}

// Purger runs purges with the Deleters the areas registered.
type Purger struct {
	tenants *Store
	keys    *keys.Ring
	log     *slog.Logger

	mu       sync.Mutex
	deleters []Deleter
	exempt   map[string]string
	forget   []func(tenantID string)
	flush    []func(ctx context.Context) error
	kick     func(ctx context.Context) error
	audit    audit.Recorder
}

// NewPurger returns a purger for the store's tenants. It also lets Install
// purge an overdue tenant before a reinstall starts clean.
func NewPurger(s *Store, ring *keys.Ring, log *slog.Logger) *Purger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Purger{tenants: s, keys: ring, log: log, exempt: map[string]string{}}
	// tenant_keys is emptied by the shred, not deleted: the row stays as a
	// tombstone (no key material, a shredded_at) so that a late EnsureTenant
	// cannot bring keys back for the id (keys.Ring.Shred).
	p.exempt["tenant_keys"] = "the purge shreds the keyset: the row stays as a tombstone with its wrapped keysets emptied, so no key can ever be made again for the id"
	p.exempt["tenant_deletions"] = "the deletion record itself: tenant id (random, not Atlassian's), cause, an operator's reason and counts per data category; no personal data"
	s.purgeNow = func(ctx context.Context, tenantID string) error {
		_, err := p.Purge(ctx, tenantID)
		if errors.Is(err, ErrNotDue) {
			return nil
		}
		return err
	}
	return p
}

// Register adds an area's Deleter. Deleters run in the order registered.
func (p *Purger) Register(d Deleter) {
	if d.Category == "" || d.Count == nil || d.Delete == nil || len(d.Tables) == 0 {
		panic("tenant: a Deleter needs a category, tables, Count and Delete")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleters = append(p.deleters, d)
}

// Exempt records why table keeps rows of a purged tenant. The reason is
// read by people: say what stays and why it cannot identify anyone.
func (p *Purger) Exempt(table, reason string) {
	if strings.TrimSpace(reason) == "" {
		panic("tenant: an exemption needs a reason")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exempt[table] = reason
}

// OnPurged registers fn to be called with each purged tenant id, to drop
// what is cached in memory about it.
func (p *Purger) OnPurged(fn func(tenantID string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forget = append(p.forget, fn)
}

// BeforeDelete registers fn to run before the deleters of each purge: a
// writer that queues rows in memory (the request log) writes them out, so
// none lands after the purge.
func (p *Purger) BeforeDelete(fn func(ctx context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flush = append(p.flush, fn)
}

// SetAudit makes RequestDeletion record each request in the audit trail
// before acting on it; if the trail cannot record it, nothing is deleted.
func (p *Purger) SetAudit(r audit.Recorder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.audit = r
}

// SetKick sets how RequestDeletion asks for a purge soon (the job runner's
// run-now); without it the purge waits for its hourly run.
func (p *Purger) SetKick(fn func(ctx context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kick = fn
}

// Coverage maps every table the purge accounts for to how: "deleted: <category>"
// or "exempt: <reason>".
func (p *Purger) Coverage() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{"installations": "deleted: " + CategoryInstallation}
	for _, d := range p.deleters {
		for _, t := range d.Tables {
			out[t] = "deleted: " + d.Category
		}
	}
	for t, why := range p.exempt {
		out[t] = "exempt: " + why
	}
	return out
}

func (p *Purger) snapshot() []Deleter {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Deleter(nil), p.deleters...)
}

// Counts counts a tenant's rows per data category; the keyset counts 1 while
// it can still decrypt.
func (p *Purger) Counts(ctx context.Context, tenantID string) (map[string]int64, error) {
	out := map[string]int64{}
	var n int64
	if err := p.tenants.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM installations WHERE tenant_id = $1`, tenantID).Scan(&n); err != nil {
		return nil, err
	}
	out[CategoryInstallation] = n
	for _, d := range p.snapshot() {
		c, err := d.Count(ctx, tenantID)
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", d.Category, err)
		}
		out[d.Category] += c
	}
	if err := p.tenants.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM tenant_keys WHERE tenant_id = $1 AND shredded_at IS NULL`, tenantID).Scan(&n); err != nil {
		return nil, err
	}
	out[CategoryKeyset] = n
	return out, nil
}

// ErrNotDue: the tenant is not pending deletion past its purge time (or was
// revived by a reinstall); nothing was deleted.
var ErrNotDue = errors.New("tenant: not due for purging")

// Purge purges one tenant if it is due, or finishes its unfinished purge,
// and returns its deletion record. ErrNotDue if neither applies.
func (p *Purger) Purge(ctx context.Context, tenantID string) (Record, error) {
	rec, err := p.Deletion(ctx, tenantID)
	switch {
	case err == nil && !rec.FinishedAt.IsZero():
		return rec, nil
	case err == nil:
		return p.finish(ctx, rec)
	case !errors.Is(err, ErrNotFound):
		return rec, err
	}
	in, err := p.tenants.ByID(ctx, tenantID)
	if errors.Is(err, ErrNotFound) {
		return Record{}, ErrNotDue
	}
	if err != nil {
		return Record{}, err
	}
	if !p.tenants.overdue(in) {
		return Record{}, ErrNotDue
	}
	before, err := p.Counts(ctx, tenantID)
	if err != nil {
		return Record{}, err
	}
	cb, _ := json.Marshal(before)
	var gone int64
	err = p.tenants.db.InTx(ctx, func(tx *store.Tx) error {
		now := tx.Now()
		// The same test as overdue, in SQL: a reinstall that revived the
		// tenant since it was read makes this delete nothing.
		res, err := tx.ExecContext(ctx, `DELETE FROM installations WHERE tenant_id = $1 AND state = 'pending_deletion'
			AND ((purge_after IS NOT NULL AND purge_after <= $2) OR (purge_after IS NULL AND uninstalled_at <= $3))`,
			tenantID, now, now.Add(-p.tenants.policy.Grace))
		if err != nil {
			return err
		}
		if gone, err = res.RowsAffected(); err != nil || gone == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tenant_deletions (tenant_id, cause, reason, requested_by, marked_at,
			purge_after, started_at, counts_before) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (tenant_id) DO NOTHING`,
			tenantID, string(in.DeletionCause), in.DeletionReason, in.DeletionBy, nullTime(in.UninstalledAt),
			nullTime(p.tenants.dueAt(in)), now, string(cb))
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("start the purge: %w", err)
	}
	if gone == 0 {
		return Record{}, ErrNotDue
	}
	p.log.InfoContext(ctx, "tenant purge started", "tenant", tenantID, "cause", string(in.DeletionCause))
	rec, err = p.Deletion(ctx, tenantID)
	if err != nil {
		return rec, err
	}
	return p.finish(ctx, rec)
}

// finish runs steps 3 to 5 of a started purge; each is safe to repeat.
func (p *Purger) finish(ctx context.Context, rec Record) (Record, error) {
	p.mu.Lock()
	flush := append([]func(context.Context) error{}, p.flush...)
	p.mu.Unlock()
	for _, fn := range flush {
		if err := fn(ctx); err != nil {
			return rec, fmt.Errorf("before the purge: %w", err)
		}
	}
	for _, d := range p.snapshot() {
		if _, err := d.Delete(ctx, rec.TenantID); err != nil {
			return rec, fmt.Errorf("delete %s: %w", d.Category, err)
		}
	}
	if err := p.keys.Shred(ctx, rec.TenantID); err != nil {
		return rec, fmt.Errorf("shred the tenant keyset: %w", err)
	}
	after, err := p.Counts(ctx, rec.TenantID)
	if err != nil {
		return rec, err
	}
	ca, _ := json.Marshal(after)
	if err := p.tenants.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tenant_deletions SET counts_after = $2, finished_at = $3
			WHERE tenant_id = $1 AND finished_at IS NULL`, rec.TenantID, string(ca), tx.Now())
		return err
	}); err != nil {
		return rec, fmt.Errorf("finish the deletion record: %w", err)
	}
	p.mu.Lock()
	forget := append([]func(string){}, p.forget...)
	p.mu.Unlock()
	for _, fn := range forget {
		fn(rec.TenantID)
	}
	p.log.InfoContext(ctx, "tenant purged", "tenant", rec.TenantID, "cause", string(rec.Cause))
	return p.Deletion(ctx, rec.TenantID)
}

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

// Deletion returns a tenant's deletion record; ErrNotFound if it has none.
func (p *Purger) Deletion(ctx context.Context, tenantID string) (Record, error) {
	recs, err := p.deletions(ctx, `WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, ErrNotFound
	}
	return recs[0], nil
}

// Deletions lists every deletion record, newest first.
func (p *Purger) Deletions(ctx context.Context) ([]Record, error) {
	return p.deletions(ctx, `ORDER BY started_at DESC, tenant_id`)
}

func (p *Purger) deletions(ctx context.Context, where string, args ...any) ([]Record, error) {
	rows, err := p.tenants.db.SQL.QueryContext(ctx, `SELECT tenant_id, cause, reason, requested_by, marked_at, purge_after,
		started_at, finished_at, counts_before, counts_after FROM tenant_deletions `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var cause, before, after string
		var marked, purgeAfter, finished sql.NullTime
		if err := rows.Scan(&r.TenantID, &cause, &r.Reason, &r.RequestedBy, &marked, &purgeAfter, &r.StartedAt, &finished, &before, &after); err != nil {
			return nil, err
		}
		r.Cause = Cause(cause)
		r.MarkedAt, r.PurgeAfter, r.FinishedAt = marked.Time.UTC(), purgeAfter.Time.UTC(), finished.Time.UTC()
		if !marked.Valid {
			r.MarkedAt = time.Time{}
		}
		if !purgeAfter.Valid {
			r.PurgeAfter = time.Time{}
		}
		if !finished.Valid {
			r.FinishedAt = time.Time{}
		}
		r.StartedAt = r.StartedAt.UTC()
		if err := json.Unmarshal([]byte(before), &r.CountsBefore); err != nil {
			return nil, fmt.Errorf("deletion record of %s: %w", r.TenantID, err)
		}
		if after != "" {
			if err := json.Unmarshal([]byte(after), &r.CountsAfter); err != nil {
				return nil, fmt.Errorf("deletion record of %s: %w", r.TenantID, err)
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PurgeResult says what one run of the purge job did.
type PurgeResult struct {
	Purged   []string // tenant ids purged (or finished) in this run
	Failures int
}

// PurgeDue purges every tenant past its purge time and finishes any purge
// left unfinished. One tenant's failure does not stop the others; the
// errors are joined.
func (p *Purger) PurgeDue(ctx context.Context) (PurgeResult, error) {
	var r PurgeResult
	now := p.tenants.db.Now()
	ids := map[string]bool{}
	rows, err := p.tenants.db.SQL.QueryContext(ctx, `SELECT tenant_id FROM installations WHERE state = 'pending_deletion'
		AND ((purge_after IS NOT NULL AND purge_after <= $1) OR (purge_after IS NULL AND uninstalled_at <= $2))
		UNION SELECT tenant_id FROM tenant_deletions WHERE finished_at IS NULL`, now, now.Add(-p.tenants.policy.Grace))
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return r, err
		}
		ids[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, err
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	var errs []error
	if err := p.sweep(ctx, now); err != nil {
		errs = append(errs, err)
	}
	for _, id := range sorted {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		_, err := p.Purge(ctx, id)
		switch {
		case err == nil:
			r.Purged = append(r.Purged, id)
		case errors.Is(err, ErrNotDue):
		default:
			r.Failures++
			errs = append(errs, fmt.Errorf("tenant %s: %w", id, err))
		}
	}
	return r, errors.Join(errs...)
}

// sweepWindow is how long after a purge its deleters run again each hour.
const sweepWindow = 48 * time.Hour

// sweep runs the deleters again for tenants purged lately: a row another
// replica had in flight when the purge ran (a refused feed request logged
// with the tenant id) is gone within the hour.
func (p *Purger) sweep(ctx context.Context, now time.Time) error {
	rows, err := p.tenants.db.SQL.QueryContext(ctx, `SELECT tenant_id FROM tenant_deletions WHERE finished_at IS NOT NULL AND finished_at >= $1`,
		now.Add(-sweepWindow))
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		for _, d := range p.snapshot() {
			n, err := d.Delete(ctx, id)
			if err != nil {
				return fmt.Errorf("sweep %s of %s: %w", d.Category, id, err)
			}
			if n > 0 {
				p.log.InfoContext(ctx, "purge sweep deleted late rows", "tenant", id, "category", d.Category, "rows", n)
			}
		}
	}
	return nil
}

// RequestDeletion marks a tenant for immediate deletion and asks for the
// purge to run now. The app behaves as uninstalled from this moment.
func (p *Purger) RequestDeletion(ctx context.Context, tenantID string, d Deletion) error {
	d.Immediate = true
	if _, err := p.tenants.ByID(ctx, tenantID); err != nil {
		return err
	}
	p.mu.Lock()
	trail := p.audit
	p.mu.Unlock()
	if trail != nil {
		// Before anything changes, while the tenant's pseudonym can still be
		// made: the trail names the tenant only by it.
		actor := d.Actor
		if actor == "" {
			actor = string(d.Cause)
		}
		if err := trail.Record(ctx, audit.Event{Actor: actor, Action: "tenant.delete", Category: "all of the tenant's data",
			Tenant: tenantID, Object: string(d.Cause), Reason: d.Reason, Outcome: audit.Allowed}); err != nil {
			return fmt.Errorf("record the deletion in the audit trail: %w", err)
		}
	}
	if _, err := p.tenants.MarkForDeletion(ctx, tenantID, d); err != nil {
		return err
	}
	p.log.InfoContext(ctx, "tenant deletion requested", "tenant", tenantID, "cause", string(d.Cause))
	p.mu.Lock()
	kick := p.kick
	p.mu.Unlock()
	if kick != nil {
		if err := kick(ctx); err != nil {
			p.log.WarnContext(ctx, "could not start the purge now; the hourly run will do it", "tenant", tenantID, "err", err)
		}
	}
	return nil
}

// PurgeJobName is the job's name for `ferry jobs run`.
const PurgeJobName = "tenant.purge"

// PurgeJob purges tenants past their purge time. Hourly: the grace period is
// days long, and an immediate deletion asks for a run of its own.
func PurgeJob(p *Purger, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  PurgeJobName,
		Doc:   "delete every row of tenants past their purge time and shred their keysets",
		Every: time.Hour,
		Run: func(ctx context.Context) error {
			r, err := p.PurgeDue(ctx)
			if log != nil {
				log.Info("tenant purge", "purged", len(r.Purged), "failures", r.Failures)
			}
			return err
		},
	}
}

// Package audit keeps the record that makes "only authorized employees and
// subcontractors ... have access to Customer Data" (P14) checkable: every
// look at sensitive data and every security decision of the staff console is
// one row of an append-only trail that nobody can quietly edit.
//
// Each row carries actor, role, action, data category, tenant pseudonym,
// object, reason, ticket, outcome and time, and is hash-chained to the row
// before it (chain.go). Periodic checkpoints of the head — row count, head
// hash, time — are signed with an Ed25519 key wrapped by the KEK and written
// outside the database (checkpoint.go), so a cut-off tail is detectable too.
// `ferry audit verify` (Verify) checks both and names the first broken row.
//
// Every other area writes to the trail through Recorder.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"ferry/internal/keys"
	"ferry/internal/store"
)

// Outcomes of a recorded decision.
const (
	Allowed = "allowed"
	Refused = "refused"
)

// Event is one thing to record. Tenant is a tenant id; the trail stores only
// its pseudonym.
type Event struct {
	Actor    string // staff user name; "cli:NAME" for an operator at the command line; "anonymous" before sign-in
	Role     string // the actor's role at the time, "" if none
	Action   string // what was done, e.g. "reqlog.decrypt", "staff.signin"
	Category string // the statement's data category touched, e.g. "Logs Data", "Staff accounts"
	Tenant   string // tenant id whose data was touched, "" if none
	Object   string // what was touched: an entry id, a staff account
	Reason   string // why (break-glass)
	Ticket   string // the support ticket that asked for it (break-glass)
	Outcome  string // Allowed or Refused
}

// Recorder writes to the audit trail. It is the one interface other areas
// use; a failed Record means the access must not happen.
type Recorder interface {
	Record(ctx context.Context, e Event) error
}

// Record is a row of the trail.
type Record struct {
	Seq             int64
	At              time.Time
	Actor           string
	Role            string
	Action          string
	Category        string
	TenantPseudonym string
	Object          string
	Reason          string
	Ticket          string
	Outcome         string
	PrevHash        []byte
	Hash            []byte
}

// Trail is the audit trail over the database, with checkpoints written to a
// Target outside it.
type Trail struct {
	db     *store.DB
	ring   *keys.Ring
	target Target
	log    *slog.Logger
}

var _ Recorder = (*Trail)(nil)

// New returns the trail. target may be nil only for code that never
// checkpoints or verifies (then both fail).
func New(db *store.DB, ring *keys.Ring, target Target, log *slog.Logger) *Trail {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trail{db: db, ring: ring, target: target, log: log}
}

// Target returns where checkpoints are written.
func (t *Trail) Target() Target { return t.target }

// maxField bounds each recorded text, so one row cannot grow without limit.
const maxField = 1000

// Record appends e to the trail.
func (t *Trail) Record(ctx context.Context, e Event) error {
	_, err := t.Append(ctx, e)
	return err
}

// tenantPseudonymValue is what the tenant's PRF is applied to: a fixed
// string, so one tenant has one pseudonym throughout the trail.
const tenantPseudonymValue = "ferry/audit/tenant"

// TenantPseudonym is how the trail names a tenant: a keyed pseudonym under
// the tenant's own key. A shredded tenant becomes "shredded".
func (t *Trail) TenantPseudonym(ctx context.Context, tenant string) (string, error) {
	if tenant == "" {
		return "", nil
	}
	p, err := t.ring.Pseudonym(ctx, tenant, tenantPseudonymValue)
	switch {
	case errors.Is(err, keys.ErrShredded):
		return "shredded", nil
	case errors.Is(err, keys.ErrNoTenantKey):
		return "unknown", nil
	case err != nil:
		return "", fmt.Errorf("audit: tenant pseudonym: %w", err)
	}
	return p, nil
}

// ErrInvalid: an event misses a required field.
var ErrInvalid = errors.New("audit: invalid event")

func clean(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxField {
		s = s[:maxField]
	}
	return s
}

// Append writes e as the next row and returns it. Rows are numbered without
// gaps: on PostgreSQL an advisory lock serialises appends across replicas; on
// SQLite the write transaction already holds the database's one write lock.
func (t *Trail) Append(ctx context.Context, e Event) (Record, error) {
	if e.Outcome == "" {
		e.Outcome = Allowed
	}
	if clean(e.Actor) == "" || clean(e.Action) == "" || clean(e.Category) == "" || (e.Outcome != Allowed && e.Outcome != Refused) {
		return Record{}, fmt.Errorf("%w: actor, action, category and outcome are required", ErrInvalid)
	}
	tp, err := t.TenantPseudonym(ctx, e.Tenant)
	if err != nil {
		return Record{}, err
	}
	r := Record{Actor: clean(e.Actor), Role: clean(e.Role), Action: clean(e.Action), Category: clean(e.Category),
		TenantPseudonym: tp, Object: clean(e.Object), Reason: clean(e.Reason), Ticket: clean(e.Ticket), Outcome: e.Outcome}
	err = t.db.InTx(ctx, func(tx *store.Tx) error {
		r.At = tx.Now()
		return appendTx(ctx, tx, &r)
	})
	if err != nil {
		return Record{}, fmt.Errorf("audit: append: %w", err)
	}
	return r, nil
}

// advisoryLock is the PostgreSQL advisory lock key of the trail's head.
const advisoryLock = 0x66657272_79617564 // "ferryaud"

// appendTx chains r to the current head and inserts it, in tx.
func appendTx(ctx context.Context, tx *store.Tx, r *Record) error {
	if tx.Dialect == store.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(advisoryLock)); err != nil {
			return err
		}
	}
	seq, prev, err := headTx(ctx, tx)
	if err != nil {
		return err
	}
	// Microseconds: what PostgreSQL keeps, so the hash is the same on both engines.
	r.At = r.At.UTC().Truncate(time.Microsecond)
	r.Seq, r.PrevHash = seq+1, prev
	r.Hash = rowHash(*r)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_trail (seq, at, actor, role, action, category, tenant_pseudonym, object, reason, ticket, outcome, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		r.Seq, r.At, r.Actor, r.Role, r.Action, r.Category, r.TenantPseudonym, r.Object, r.Reason, r.Ticket, r.Outcome, r.PrevHash, r.Hash)
	return err
}

// genesis is the previous hash of the first row.
var genesis = make([]byte, sha256.Size)

func headTx(ctx context.Context, tx *store.Tx) (int64, []byte, error) {
	var seq int64
	var h []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1`).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, genesis, nil
	}
	return seq, h, err
}

// Head returns the number of the last row and its hash (0 and the genesis
// hash for an empty trail).
func (t *Trail) Head(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var h []byte
	err := t.db.SQL.QueryRowContext(ctx, `SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1`).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, genesis, nil
	}
	return seq, h, err
}

const recordCols = `seq, at, actor, role, action, category, tenant_pseudonym, object, reason, ticket, outcome, prev_hash, hash`

func scanRecord(sc interface{ Scan(...any) error }) (Record, error) {
	var r Record
	err := sc.Scan(&r.Seq, &r.At, &r.Actor, &r.Role, &r.Action, &r.Category, &r.TenantPseudonym, &r.Object, &r.Reason,
		&r.Ticket, &r.Outcome, &r.PrevHash, &r.Hash)
	r.At = r.At.UTC()
	return r, err
}

// Filter selects rows for List.
type Filter struct {
	Before          int64  // only rows with seq < Before; 0: from the newest
	Limit           int    // most rows (default 100)
	TenantPseudonym string // only rows about this tenant
	Actor           string // only rows by this actor
}

// List returns rows newest first.
func (t *Trail) List(ctx context.Context, f Filter) ([]Record, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.Before <= 0 {
		f.Before = 1 << 62
	}
	q := `SELECT ` + recordCols + ` FROM audit_trail WHERE seq < $1`
	args := []any{f.Before}
	if f.TenantPseudonym != "" {
		args = append(args, f.TenantPseudonym)
		q += fmt.Sprintf(` AND tenant_pseudonym = $%d`, len(args))
	}
	if f.Actor != "" {
		args = append(args, f.Actor)
		q += fmt.Sprintf(` AND actor = $%d`, len(args))
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args))
	rows, err := t.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Adopt chains the rows that the migration moved out of the old
// reqlog_access_audit table (audit_import) onto the trail, oldest first, and
// empties the staging table, in one transaction. Their operator name was
// never authenticated, and the trail says so.
func (t *Trail) Adopt(ctx context.Context) (int, error) {
	type imp struct {
		id                                   int64
		at                                   time.Time
		actor, action, category, tenant, obj string
		reason                               string
	}
	rows, err := t.db.SQL.QueryContext(ctx, `SELECT id, at, actor, action, category, tenant_id, object, reason FROM audit_import ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("audit: read imported rows: %w", err)
	}
	var imps []imp
	for rows.Next() {
		var i imp
		if err := rows.Scan(&i.id, &i.at, &i.actor, &i.action, &i.category, &i.tenant, &i.obj, &i.reason); err != nil {
			rows.Close()
			return 0, err
		}
		imps = append(imps, i)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(imps) == 0 {
		return 0, nil
	}
	recs := make([]Record, len(imps))
	for n, i := range imps {
		tp, err := t.TenantPseudonym(ctx, i.tenant)
		if err != nil {
			return 0, err
		}
		recs[n] = Record{At: i.at, Actor: clean("cli:" + i.actor + " (unverified)"), Action: i.action, Category: i.category,
			TenantPseudonym: tp, Object: i.obj, Reason: clean(i.reason), Outcome: Allowed}
	}
	err = t.db.InTx(ctx, func(tx *store.Tx) error {
		for n := range recs {
			if err := appendTx(ctx, tx, &recs[n]); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM audit_import WHERE id = $1`, imps[n].id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("audit: adopt imported rows: %w", err)
	}
	t.log.Info("audit: moved earlier request-log decryptions into the trail", "rows", len(recs))
	return len(recs), nil
}

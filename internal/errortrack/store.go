package errortrack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"ferry/internal/store"
)

// Store owns error tracking's tables: error_events (the local store the
// console lists), error_outbox (what is still to reach the upstream Sentry)
// and error_pseudonym_key.
type Store struct {
	db *store.DB

	// Group commit: envelopes that arrive while a transaction is being
	// written wait and are written together in the next one, so a burst
	// costs one commit (one WAL sync) instead of one per envelope, and a
	// lone envelope waits for nobody.
	mu      sync.Mutex
	writing bool
	queue   []*acceptReq
}

type acceptReq struct {
	items   []Item
	forward bool
	n       int
	err     error
	done    chan struct{}
}

// NewStore returns the store over db.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// Now is the database's clock (replaceable in tests), which schedules the
// outbox.
func (s *Store) Now() time.Time { return s.db.Now() }

// Item is one scrubbed envelope item ready to keep.
type Item struct {
	Type    string // ItemEvent, ItemSession or ItemSessions
	EventID string // events only
	Payload []byte // scrubbed JSON

	// Summary of an event for the console list.
	Project, Level, Release, Environment, Platform, Title, Browser, OS string
}

// Item types Ferry keeps and forwards; every other type is skipped.
const (
	ItemEvent    = "event"
	ItemSession  = "session"
	ItemSessions = "sessions"
)

// maxGroup bounds the envelopes written in one transaction.
const maxGroup = 256

// Accept keeps one envelope's items: events in the local store, and, when
// forward is set, every item in the outbox — all of them or none, committed
// before Accept returns. An event whose id the project already has (an
// SDK's retry) is neither stored nor queued again. It returns how many
// items were new.
func (s *Store) Accept(ctx context.Context, items []Item, forward bool) (int, error) {
	req := &acceptReq{items: items, forward: forward, done: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, req)
	if s.writing {
		s.mu.Unlock()
		select {
		case <-req.done:
			return req.n, req.err
		case <-ctx.Done():
			// Still written if its group was taken; the SDK may retry, and
			// the retry is deduplicated by event id.
			return 0, ctx.Err()
		}
	}
	s.writing = true
	s.mu.Unlock()
	s.drain(req)
	<-req.done
	return req.n, req.err
}

// drain writes queued groups until the one holding own is written; if more
// are queued by then, a new goroutine goes on writing them, so the caller
// answers its SDK without waiting for later arrivals.
func (s *Store) drain(own *acceptReq) {
	s.mu.Lock()
	for len(s.queue) > 0 {
		group := s.queue[:min(len(s.queue), maxGroup)]
		s.queue = s.queue[len(group):]
		s.mu.Unlock()
		s.write(group)
		s.mu.Lock()
		if own != nil && slices.Contains(group, own) && len(s.queue) > 0 {
			s.mu.Unlock()
			go s.drain(nil)
			return
		}
	}
	s.writing = false
	s.mu.Unlock()
}

// write commits a group in one transaction. If it fails, each envelope is
// retried alone, so one bad envelope cannot fail the others.
func (s *Store) write(group []*acceptReq) {
	err := s.db.InTx(context.Background(), func(tx *store.Tx) error { return s.insert(tx, group) })
	if err != nil && len(group) > 1 {
		for _, r := range group {
			s.write([]*acceptReq{r})
		}
		return
	}
	for _, r := range group {
		if err != nil {
			r.n, r.err = 0, err
		}
		close(r.done)
	}
}

func (s *Store) insert(tx *store.Tx, group []*acceptReq) error {
	ctx := context.Background()
	ev, err := tx.PrepareContext(ctx, `INSERT INTO error_events
		(event_id, project, received_at, level, release, environment, platform, title, browser, os, payload)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (project, event_id) DO NOTHING`)
	if err != nil {
		return err
	}
	defer ev.Close()
	ob, err := tx.PrepareContext(ctx, `INSERT INTO error_outbox (item_type, event_id, payload, created_at, next_attempt_at, project)
		VALUES ($1, $2, $3, $4, $4, $5)`)
	if err != nil {
		return err
	}
	defer ob.Close()
	for _, r := range group {
		r.n = 0
		for _, it := range r.items {
			if it.Type == ItemEvent {
				res, err := ev.ExecContext(ctx, it.EventID, it.Project, tx.Now(), it.Level, it.Release, it.Environment,
					it.Platform, it.Title, it.Browser, it.OS, it.Payload)
				if err != nil {
					return fmt.Errorf("store event: %w", err)
				}
				if k, _ := res.RowsAffected(); k == 0 {
					continue // already have it
				}
			}
			r.n++
			if !r.forward {
				continue
			}
			if _, err := ob.ExecContext(ctx, it.Type, it.EventID, it.Payload, tx.Now(), it.Project); err != nil {
				return fmt.Errorf("queue item: %w", err)
			}
		}
	}
	return nil
}

// Filter selects events for Recent. Empty fields match everything.
type Filter struct {
	Project string
	Release string
	Level   string
	Cursor  string // Page.Next of the previous page; "" for the newest
	Limit   int    // default 50, at most 200
}

// EventSummary is one row of the console's error list.
type EventSummary struct {
	ID          int64
	EventID     string
	Project     string
	ReceivedAt  time.Time
	Level       string
	Release     string
	Environment string
	Platform    string
	Title       string
	Browser     string
	OS          string
}

// Page is one page of Recent, newest first. Next is the cursor of the
// following page, "" on the last.
type Page struct {
	Events []EventSummary
	Next   string
}

// ErrBadCursor: a cursor that Recent did not hand out.
var ErrBadCursor = errors.New("errortrack: bad cursor")

const summaryCols = `id, event_id, project, received_at, level, release, environment, platform, title, browser, os`

// Recent lists scrubbed events newest first, filtered by project, release
// and level, a page at a time (the staff console's error page calls it).
func (s *Store) Recent(ctx context.Context, f Filter) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 200 {
		limit = 200
	}
	before := int64(1<<63 - 1)
	if f.Cursor != "" {
		c, err := strconv.ParseInt(f.Cursor, 36, 64)
		if err != nil || c <= 0 {
			return Page{}, ErrBadCursor
		}
		before = c
	}
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+summaryCols+` FROM error_events
		WHERE id < $1 AND ($2 = '' OR project = $2) AND ($3 = '' OR release = $3) AND ($4 = '' OR level = $4)
		ORDER BY id DESC LIMIT $5`, before, f.Project, f.Release, f.Level, limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var p Page
	for rows.Next() {
		e, err := scanSummary(rows)
		if err != nil {
			return Page{}, err
		}
		p.Events = append(p.Events, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, err
	}
	if len(p.Events) > limit {
		p.Events = p.Events[:limit]
		p.Next = strconv.FormatInt(p.Events[limit-1].ID, 36)
	}
	return p, nil
}

func scanSummary(row interface{ Scan(...any) error }) (EventSummary, error) {
	var e EventSummary
	err := row.Scan(&e.ID, &e.EventID, &e.Project, &e.ReceivedAt, &e.Level, &e.Release, &e.Environment, &e.Platform, &e.Title, &e.Browser, &e.OS)
	e.ReceivedAt = e.ReceivedAt.UTC()
	return e, err
}

// ErrNoEvent: no stored event has that id.
var ErrNoEvent = errors.New("errortrack: no such event")

// Event returns one stored event's summary and its scrubbed JSON.
func (s *Store) Event(ctx context.Context, id int64) (EventSummary, []byte, error) {
	var payload []byte
	var e EventSummary
	err := s.db.SQL.QueryRowContext(ctx, `SELECT `+summaryCols+`, payload FROM error_events WHERE id = $1`, id).Scan(
		&e.ID, &e.EventID, &e.Project, &e.ReceivedAt, &e.Level, &e.Release, &e.Environment, &e.Platform, &e.Title, &e.Browser, &e.OS, &payload)
	if errors.Is(err, sql.ErrNoRows) {
		return e, nil, ErrNoEvent
	}
	e.ReceivedAt = e.ReceivedAt.UTC()
	return e, payload, err
}

// Outbox row states.
const (
	statePending  = "pending"
	stateRejected = "rejected"
)

// OutboxItem is a claimed outbox row.
type OutboxItem struct {
	ID       int64
	Type     string
	EventID  string
	Payload  []byte
	Attempts int // including this one
}

// Claim leases up to n due rows: their next attempt moves lease ahead, so
// another forwarder (another replica, `ferry jobs run`) skips them, and a
// crash before Delivered only delays them by the lease.
func (s *Store) Claim(ctx context.Context, n int, lease time.Duration) ([]OutboxItem, error) {
	var out []OutboxItem
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT id, item_type, event_id, payload, attempts FROM error_outbox
			WHERE state = $1 AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3`+lock, statePending, tx.Now(), n)
		if err != nil {
			return err
		}
		for rows.Next() {
			var it OutboxItem
			if err := rows.Scan(&it.ID, &it.Type, &it.EventID, &it.Payload, &it.Attempts); err != nil {
				rows.Close()
				return err
			}
			it.Attempts++
			out = append(out, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE error_outbox SET attempts = $2, next_attempt_at = $3 WHERE id = $1`,
				it.ID, it.Attempts, tx.Now().Add(lease)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	return out, nil
}

// Delivered removes a row Sentry accepted and, for an event, records when
// on the stored event (the console shows it).
func (s *Store) Delivered(ctx context.Context, id int64) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE error_events SET forwarded_at = $2 WHERE forwarded_at IS NULL AND EXISTS (
			SELECT 1 FROM error_outbox o WHERE o.id = $1 AND o.item_type = 'event' AND o.event_id = error_events.event_id
			AND (o.project = '' OR o.project = error_events.project))`, id, tx.Now()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM error_outbox WHERE id = $1`, id)
		return err
	})
}

// Retry schedules a failed row's next attempt.
func (s *Store) Retry(ctx context.Context, id int64, at time.Time, reason string) error {
	_, err := s.db.SQL.ExecContext(ctx, `UPDATE error_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, at.UTC(), reason)
	return err
}

// Reject parks a row Sentry refused for good (it is kept, for the record,
// until retention removes it).
func (s *Store) Reject(ctx context.Context, id int64, reason string) error {
	_, err := s.db.SQL.ExecContext(ctx, `UPDATE error_outbox SET state = $2, last_error = $3 WHERE id = $1`, id, stateRejected, reason)
	return err
}

// RetryNow makes every pending row due: a restart often follows the fix of
// an outage, and one early attempt is cheap.
func (s *Store) RetryNow(ctx context.Context) error {
	_, err := s.db.SQL.ExecContext(ctx, `UPDATE error_outbox SET next_attempt_at = $2 WHERE state = $1`, statePending, s.db.Now())
	return err
}

// NextDue is when the earliest pending row is due; ok is false when none is
// pending.
func (s *Store) NextDue(ctx context.Context) (at time.Time, ok bool, err error) {
	// ORDER BY … LIMIT 1 rather than MIN(): SQLite's driver knows the column
	// is a timestamp only when it is read as the column.
	err = s.db.SQL.QueryRowContext(ctx, `SELECT next_attempt_at FROM error_outbox WHERE state = $1
		ORDER BY next_attempt_at LIMIT 1`, statePending).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return at.UTC(), true, nil
}

// OutboxStats counts outbox rows by state.
type OutboxStats struct {
	Pending, Rejected int
}

// Stats counts the outbox.
func (s *Store) Stats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	err := s.db.SQL.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN state = $1 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN state = $2 THEN 1 ELSE 0 END), 0) FROM error_outbox`, statePending, stateRejected).Scan(&st.Pending, &st.Rejected)
	return st, err
}

// ExpireResult says what one retention run removed.
type ExpireResult struct {
	Cutoff              time.Time
	Events              int64
	OutboxUndeliverable int64 // pending rows older than the cutoff: never reached Sentry
	OutboxRejected      int64
}

// Expire deletes stored events and outbox rows received before now − days.
func (s *Store) Expire(ctx context.Context, days int) (ExpireResult, error) {
	res := ExpireResult{Cutoff: s.db.Now().AddDate(0, 0, -days)}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM error_events WHERE received_at < $1`, res.Cutoff)
		if err != nil {
			return err
		}
		res.Events, _ = r.RowsAffected()
		r, err = tx.ExecContext(ctx, `DELETE FROM error_outbox WHERE created_at < $1 AND state = $2`, res.Cutoff, statePending)
		if err != nil {
			return err
		}
		res.OutboxUndeliverable, _ = r.RowsAffected()
		r, err = tx.ExecContext(ctx, `DELETE FROM error_outbox WHERE created_at < $1 AND state = $2`, res.Cutoff, stateRejected)
		if err != nil {
			return err
		}
		res.OutboxRejected, _ = r.RowsAffected()
		return nil
	})
	return res, err
}

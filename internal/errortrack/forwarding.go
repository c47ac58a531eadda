package errortrack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// What the staff console shows of an event beyond its summary: how often
// the same error was seen, and where the event went on its way to Sentry.

// Forwarding states of a stored event.
const (
	ForwardDelivered = "delivered" // the upstream Sentry accepted it
	ForwardQueued    = "queued"    // in the outbox, waiting for its (next) attempt
	ForwardParked    = "parked"    // Sentry refused it for good; kept in the outbox for the record
	ForwardLocal     = "local"     // not queued: no upstream was configured when it arrived
)

// Forwarding is one stored event's way to the upstream Sentry.
type Forwarding struct {
	State       string
	Attempts    int       // queued or parked: attempts made so far
	NextAttempt time.Time // queued: when it is tried next
	LastError   string    // queued or parked: what the last attempt got
	DeliveredAt time.Time // delivered: when Sentry accepted it
}

// Forwarding says where the stored event e went.
func (s *Store) Forwarding(ctx context.Context, e EventSummary) (Forwarding, error) {
	var f Forwarding
	var at sql.NullTime
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT forwarded_at FROM error_events WHERE id = $1`, e.ID).Scan(&at); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return f, ErrNoEvent
		}
		return f, fmt.Errorf("event forwarding: %w", err)
	}
	if at.Valid {
		return Forwarding{State: ForwardDelivered, DeliveredAt: at.Time.UTC()}, nil
	}
	var state string
	var next time.Time
	err := s.db.SQL.QueryRowContext(ctx, `SELECT state, attempts, next_attempt_at, last_error FROM error_outbox
		WHERE item_type = $1 AND event_id = $2 AND (project = $3 OR project = '') ORDER BY id DESC LIMIT 1`,
		ItemEvent, e.EventID, e.Project).Scan(&state, &f.Attempts, &next, &f.LastError)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Forwarding{State: ForwardLocal}, nil
	case err != nil:
		return f, fmt.Errorf("event forwarding: %w", err)
	case state == stateRejected:
		f.State = ForwardParked
	default:
		f.State, f.NextAttempt = ForwardQueued, next.UTC()
	}
	return f, nil
}

// Outbox is the state of forwarding as a whole.
type Outbox struct {
	Queued      int       // items waiting for an attempt (events and sessions)
	Parked      int       // items Sentry refused for good
	Delivered   int       // stored events Sentry accepted (those still kept)
	OldestQueue time.Time // when the oldest queued item arrived; zero if none
	LastError   string    // the latest failure of a queued item, else of a parked one; "" if none
}

// Outbox counts the outbox and the delivered events.
func (s *Store) Outbox(ctx context.Context) (Outbox, error) {
	var o Outbox
	st, err := s.Stats(ctx)
	if err != nil {
		return o, fmt.Errorf("outbox: %w", err)
	}
	o.Queued, o.Parked = st.Pending, st.Rejected
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM error_events WHERE forwarded_at IS NOT NULL`).Scan(&o.Delivered); err != nil {
		return o, fmt.Errorf("outbox: %w", err)
	}
	// ORDER BY … LIMIT 1 rather than MIN(): see NextDue.
	err = s.db.SQL.QueryRowContext(ctx, `SELECT created_at FROM error_outbox WHERE state = $1 ORDER BY created_at LIMIT 1`,
		statePending).Scan(&o.OldestQueue)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("outbox: %w", err)
	}
	o.OldestQueue = o.OldestQueue.UTC()
	// A failed attempt moves its queued row's next attempt ahead, so the
	// queued row due last carries the most recent failure. (A parked row's
	// next attempt is only its last lease: it comes after every queued one.)
	err = s.db.SQL.QueryRowContext(ctx, `SELECT last_error FROM error_outbox WHERE last_error <> ''
		ORDER BY CASE WHEN state = $1 THEN 0 ELSE 1 END, next_attempt_at DESC, id DESC LIMIT 1`, statePending).Scan(&o.LastError)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("outbox: %w", err)
	}
	return o, nil
}

// Occurrences is how often one error (same project and title) was seen
// among the stored events.
type Occurrences struct {
	Count               int
	FirstSeen, LastSeen time.Time
}

// Occurrences counts the stored events of e's project with e's title.
func (s *Store) Occurrences(ctx context.Context, e EventSummary) (Occurrences, error) {
	var o Occurrences
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM error_events WHERE project = $1 AND title = $2`,
		e.Project, e.Title).Scan(&o.Count); err != nil {
		return o, fmt.Errorf("occurrences: %w", err)
	}
	if o.Count == 0 {
		return o, nil
	}
	// The rows themselves, not MIN()/MAX(): SQLite's driver knows the
	// column is a timestamp only when it is read as the column.
	for _, q := range []struct {
		order string
		into  *time.Time
	}{{"ASC", &o.FirstSeen}, {"DESC", &o.LastSeen}} {
		if err := s.db.SQL.QueryRowContext(ctx, `SELECT received_at FROM error_events WHERE project = $1 AND title = $2
			ORDER BY received_at `+q.order+`, id `+q.order+` LIMIT 1`, e.Project, e.Title).Scan(q.into); err != nil {
			return o, fmt.Errorf("occurrences: %w", err)
		}
		*q.into = q.into.UTC()
	}
	return o, nil
}

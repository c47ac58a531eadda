package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"ferry/internal/jobs"
	"ferry/internal/store"
)

// A Connect lifecycle token is validly signed by Atlassian (installed,
// uninstalled) or by the site (enabled, disabled), but the callback's body is
// not signed at all. A token that worked once must therefore never work
// again: replayed with another body, it would install the attacker's shared
// secret or end a live tenant. Ferry records every lifecycle token it acts on
// in seen_tokens, in the same transaction as the change it makes, so that
// of two presentations of one token exactly one changes anything, on any
// number of replicas.

// Nonce is a single-use token as Ferry records it: Digest names it (never
// the token itself) and Expires is when it would be refused as expired
// anyway, after which the record may go. The zero Nonce records nothing; it
// is for callers that act without a token (operators, tests).
type Nonce struct {
	Digest  string
	Expires time.Time
}

// ErrReplayed: the token of this lifecycle event has been presented before.
var ErrReplayed = errors.New("tenant: lifecycle token already used")

// SeenTokenSlack is how long past its expiry a used token stays recorded:
// replicas whose clocks run behind still refuse its replay.
const SeenTokenSlack = 5 * time.Minute

// use records n inside tx, or reports ErrReplayed if it is recorded. The
// insert takes the row's lock, so a concurrent presentation waits for this
// transaction and then finds the row (PostgreSQL), or never runs beside it
// (SQLite's single writer).
func use(ctx context.Context, tx *store.Tx, n Nonce) error {
	if n.Digest == "" {
		return nil
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO seen_tokens (digest, expires_at) VALUES ($1, $2)
		ON CONFLICT (digest) DO NOTHING`, n.Digest, n.Expires.UTC().Truncate(time.Second))
	if err != nil {
		return fmt.Errorf("record lifecycle token: %w", err)
	}
	if k, err := res.RowsAffected(); err != nil {
		return err
	} else if k == 0 {
		return ErrReplayed
	}
	return nil
}

// unused reports ErrReplayed if n is recorded already. It decides nothing
// (use does, in the transaction of the change); it lets a replay be named
// as one before its body is looked at.
func (s *Store) unused(ctx context.Context, n Nonce) error {
	if n.Digest == "" {
		return nil
	}
	var one int
	err := s.db.SQL.QueryRowContext(ctx, `SELECT 1 FROM seen_tokens WHERE digest = $1`, n.Digest).Scan(&one)
	switch {
	case err == nil:
		return ErrReplayed
	case errors.Is(err, sql.ErrNoRows):
		return nil
	}
	return err
}

// Consume records n as used, for a lifecycle event that changes nothing
// else (an uninstall for a site Ferry never saw). ErrReplayed if it was.
func (s *Store) Consume(ctx context.Context, n Nonce) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error { return use(ctx, tx, n) })
}

// ForgetSeenTokens deletes the records of tokens that expired more than
// SeenTokenSlack ago and reports how many went.
func (s *Store) ForgetSeenTokens(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM seen_tokens WHERE expires_at < $1`,
			tx.Now().Add(-SeenTokenSlack).Truncate(time.Second))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// SeenTokensJobName is the job's name for `ferry jobs run`.
const SeenTokensJobName = "tenant.seen-tokens"

// SeenTokensJob deletes records of used lifecycle tokens once the tokens
// themselves have expired. The table holds one small row per lifecycle
// callback for a few minutes; every 15 minutes keeps it near empty.
func SeenTokensJob(s *Store, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  SeenTokensJobName,
		Doc:   "forget used lifecycle tokens once they have expired",
		Every: 15 * time.Minute,
		Run: func(ctx context.Context) error {
			n, err := s.ForgetSeenTokens(ctx)
			if log != nil {
				log.Info("seen lifecycle tokens forgotten", "rows_deleted", n)
			}
			return err
		},
	}
}

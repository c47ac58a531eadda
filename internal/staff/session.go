package staff

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/audit"
	"ferry/internal/jobs"
	"ferry/internal/store"
)

// Session limits: a session ends after IdleTimeout without a request, and
// AbsoluteTimeout after sign-in whatever happens. A visitor who has not
// signed in keeps a pre-sign-in session for VisitorTimeout.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
	VisitorTimeout  = 15 * time.Minute
)

// Lockout: after MaxFailures failed sign-ins in a row an account is locked
// for LockoutPeriod, whatever is tried next.
const (
	MaxFailures   = 5
	LockoutPeriod = 15 * time.Minute
)

// Session is a console session. Token is the secret the cookie carries; it
// is known only when the session is made (the database keeps its hash).
type Session struct {
	Token     string
	CSRF      string
	AccountID string // "" for a visitor who has not signed in
	CreatedAt time.Time
	LastSeen  time.Time
}

// Principal is a signed-in staff member on one request.
type Principal struct {
	Account
	SessionHash string
	CSRF        string
	SignedInAt  time.Time
}

// Actor names the principal in the audit trail.
func (p Principal) Actor() Actor { return Actor{Name: p.Username, Role: p.Role} }

// Can reports whether the principal's role holds perm.
func (p Principal) Can(perm Permission) bool { return p.Role.Can(perm) }

// CheckCSRF compares a submitted form token with the session's, in constant time.
func (p Principal) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(p.CSRF)) == 1
}

var (
	// ErrSignIn is every failed sign-in, whatever the cause: the cause is in
	// the audit trail, not in the answer.
	ErrSignIn = apperr.New(apperr.EUNAUTHORIZED, "sign-in failed: wrong user name, password or code, or the account is locked after repeated failures")
	// ErrNoSession: the cookie names no live signed-in session.
	ErrNoSession = apperr.New(apperr.EUNAUTHORIZED, "not signed in")
	// ErrSessionExpired: the session ended (idle or absolute timeout, or the
	// account's access ended).
	ErrSessionExpired = apperr.New(apperr.EUNAUTHORIZED, "your session has ended; sign in again")
)

// NewVisitor starts a pre-sign-in session: it carries the sign-in form's
// CSRF token and the single sign-on state, and is never promoted.
func (s *Store) NewVisitor(ctx context.Context) (Session, error) {
	return s.newSession(ctx, "")
}

func (s *Store) newSession(ctx context.Context, accountID string) (Session, error) {
	ss := Session{Token: randomToken(32), CSRF: randomToken(24), AccountID: accountID}
	var acct any
	if accountID != "" {
		acct = accountID
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		ss.CreatedAt, ss.LastSeen = tx.Now(), tx.Now()
		_, err := tx.ExecContext(ctx, `INSERT INTO staff_sessions (id_hash, account_id, csrf, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)`,
			hashToken(ss.Token), acct, ss.CSRF, tx.Now())
		return err
	})
	return ss, err
}

// Visitor returns a live pre-sign-in session.
func (s *Store) Visitor(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, ErrNoSession
	}
	var ss Session
	var acct sql.NullString
	err := s.db.SQL.QueryRowContext(ctx, `SELECT account_id, csrf, created_at, last_seen_at FROM staff_sessions WHERE id_hash = $1`,
		hashToken(token)).Scan(&acct, &ss.CSRF, &ss.CreatedAt, &ss.LastSeen)
	if errors.Is(err, sql.ErrNoRows) || acct.Valid || (err == nil && !s.Now().Before(ss.CreatedAt.Add(VisitorTimeout))) {
		return Session{}, ErrNoSession
	}
	ss.Token = token
	return ss, err
}

// Authenticate returns the signed-in principal of a session token, after
// checking both timeouts and that the account may still use the console (a
// subcontractor's contract that ended an hour ago ends the session too).
// It refreshes the idle timer.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoSession
	}
	h := hashToken(token)
	var p Principal
	var acct sql.NullString
	var last time.Time
	err := s.db.SQL.QueryRowContext(ctx, `SELECT account_id, csrf, created_at, last_seen_at FROM staff_sessions WHERE id_hash = $1`, h).
		Scan(&acct, &p.CSRF, &p.SignedInAt, &last)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !acct.Valid) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, err
	}
	now := s.Now()
	a, err := s.ByID(ctx, acct.String)
	if err != nil {
		return Principal{}, err
	}
	var why string
	switch {
	case !now.Before(p.SignedInAt.Add(AbsoluteTimeout)):
		why = "absolute session timeout (12 h)"
	case !now.Before(last.Add(IdleTimeout)):
		why = "idle session timeout (30 min)"
	default:
		why = a.Inactive(now)
	}
	if why != "" {
		s.db.SQL.ExecContext(ctx, `DELETE FROM staff_sessions WHERE id_hash = $1`, h)
		_ = s.record(ctx, Actor{Name: a.Username, Role: a.Role}, "staff.session.end", a.Username, audit.Refused, why)
		return Principal{}, ErrSessionExpired
	}
	if _, err := s.db.SQL.ExecContext(ctx, `UPDATE staff_sessions SET last_seen_at = $2 WHERE id_hash = $1`, h, now); err != nil {
		return Principal{}, err
	}
	p.Account, p.SessionHash = a, h
	p.SignedInAt = p.SignedInAt.UTC()
	return p, nil
}

// SignOut ends a session (signed in or not).
func (s *Store) SignOut(ctx context.Context, token string) error {
	_, err := s.db.SQL.ExecContext(ctx, `DELETE FROM staff_sessions WHERE id_hash = $1`, hashToken(token))
	return err
}

// SignIn checks user name, password and TOTP code and starts a new session.
// Every outcome is recorded with its cause; the answer to a failure is
// always ErrSignIn. A code is good once: a code of a time step already used
// is refused as a replay. MaxFailures in a row lock the account.
func (s *Store) SignIn(ctx context.Context, username, password, code string) (Session, error) {
	username = strings.TrimSpace(username)
	code = strings.TrimSpace(code)
	var (
		id, phc  string
		role     string
		secretW  []byte
		lastStep int64
		failures int
		locked   sql.NullTime
	)
	err := s.db.SQL.QueryRowContext(ctx, `SELECT id, role, password_hash, totp_secret, totp_last_step, failed_logins, locked_until
		FROM staff_accounts WHERE username = $1`, username).Scan(&id, &role, &phc, &secretW, &lastStep, &failures, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		checkPassword("", password) // same time as a known user
		// What was typed is not recorded: it may be anything, even an email address.
		_ = s.record(ctx, Actor{Name: "anonymous"}, "staff.signin", "", audit.Refused, "unknown user name")
		return Session{}, ErrSignIn
	}
	if err != nil {
		return Session{}, err
	}
	who := Actor{Name: username, Role: Role(role)}
	refuse := func(why string, counts bool) (Session, error) {
		if counts {
			why = s.fail(ctx, id, why)
		}
		if err := s.record(ctx, who, "staff.signin", username, audit.Refused, why); err != nil {
			return Session{}, err
		}
		return Session{}, ErrSignIn
	}
	now := s.Now()
	if locked.Valid && now.Before(locked.Time) {
		checkPassword("", password)
		return refuse("account locked after repeated failures", false)
	}
	a, err := s.ByID(ctx, id)
	if err != nil {
		return Session{}, err
	}
	ok, err := checkPassword(phc, password)
	if err != nil {
		return Session{}, err
	}
	if why := a.Inactive(now); why != "" {
		return refuse(why, false)
	}
	if !ok {
		return refuse("wrong password", true)
	}
	if secretW == nil {
		return refuse("no TOTP enrolled", false)
	}
	secret, err := s.ring.KEK().Decrypt(secretW, totpAD(id, "active"))
	if err != nil {
		return Session{}, fmt.Errorf("staff: unwrap TOTP secret: %w", err)
	}
	step := totpStep(string(secret), code, now)
	if step == 0 {
		return refuse("wrong TOTP code", true)
	}
	if step <= lastStep {
		return refuse("replayed TOTP code", true)
	}
	// Conditional: of two sign-ins racing with one code, one wins.
	res, err := s.db.SQL.ExecContext(ctx, `UPDATE staff_accounts SET totp_last_step = $2, failed_logins = 0, locked_until = NULL
		WHERE id = $1 AND totp_last_step < $2`, id, step)
	if err != nil {
		return Session{}, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return refuse("replayed TOTP code", true)
	}
	return s.startSession(ctx, a, "password and TOTP")
}

// SignInSSO starts a session for the account bound to a verified single
// sign-on identity.
func (s *Store) SignInSSO(ctx context.Context, issuer, subject string) (Session, error) {
	var id string
	err := s.db.SQL.QueryRowContext(ctx, `SELECT id FROM staff_accounts WHERE oidc_issuer = $1 AND oidc_subject = $2`, issuer, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		_ = s.record(ctx, Actor{Name: "anonymous"}, "staff.signin", "", audit.Refused, "single sign-on identity not bound to a staff account")
		return Session{}, ErrSignIn
	}
	if err != nil {
		return Session{}, err
	}
	a, err := s.ByID(ctx, id)
	if err != nil {
		return Session{}, err
	}
	if why := a.Inactive(s.Now()); why != "" {
		_ = s.record(ctx, Actor{Name: a.Username, Role: a.Role}, "staff.signin", a.Username, audit.Refused, why+" (single sign-on)")
		return Session{}, ErrSignIn
	}
	return s.startSession(ctx, a, "single sign-on")
}

func (s *Store) startSession(ctx context.Context, a Account, how string) (Session, error) {
	ss, err := s.newSession(ctx, a.ID)
	if err != nil {
		return Session{}, err
	}
	if err := s.record(ctx, Actor{Name: a.Username, Role: a.Role}, "staff.signin", a.Username, audit.Allowed, how); err != nil {
		s.SignOut(ctx, ss.Token)
		return Session{}, err
	}
	return ss, nil
}

// fail counts a failed sign-in and locks the account at MaxFailures; it
// returns the reason to record.
func (s *Store) fail(ctx context.Context, id, why string) string {
	var n int
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.QueryRowContext(ctx, `UPDATE staff_accounts SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins`, id).Scan(&n); err != nil {
			return err
		}
		if n >= MaxFailures {
			_, err := tx.ExecContext(ctx, `UPDATE staff_accounts SET locked_until = $2, failed_logins = 0 WHERE id = $1`, id, tx.Now().Add(LockoutPeriod))
			return err
		}
		return nil
	})
	if err == nil && n >= MaxFailures {
		return fmt.Sprintf("%s; account locked for %s after %d failures", why, LockoutPeriod, n)
	}
	return why
}

// SSOState is what a single sign-on round trip must bring back.
type SSOState struct {
	State, Nonce, Verifier string
	EnrolTokenHash         string // set when the round trip binds an enrolment
}

// PutSSOState stores a round trip's state on a visitor session.
func (s *Store) PutSSOState(ctx context.Context, visitorToken string, st SSOState) error {
	res, err := s.db.SQL.ExecContext(ctx, `UPDATE staff_sessions SET oidc_state = $2, oidc_nonce = $3, oidc_verifier = $4, enrol_token_hash = $5
		WHERE id_hash = $1 AND account_id IS NULL`, hashToken(visitorToken), st.State, st.Nonce, st.Verifier, st.EnrolTokenHash)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNoSession
	}
	return nil
}

// TakeSSOState returns and clears a visitor session's round-trip state: it
// is good for one callback.
func (s *Store) TakeSSOState(ctx context.Context, visitorToken string) (SSOState, error) {
	var st SSOState
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT oidc_state, oidc_nonce, oidc_verifier, enrol_token_hash FROM staff_sessions
			WHERE id_hash = $1 AND account_id IS NULL`, hashToken(visitorToken)).Scan(&st.State, &st.Nonce, &st.Verifier, &st.EnrolTokenHash)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoSession
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE staff_sessions SET oidc_state = '', oidc_nonce = '', oidc_verifier = '', enrol_token_hash = ''
			WHERE id_hash = $1`, hashToken(visitorToken))
		return err
	})
	if err == nil && st.State == "" {
		return st, ErrNoSession
	}
	return st, err
}

// EnrolTokenHash is how an enrolment token is kept.
func EnrolTokenHash(token string) string { return hashToken(token) }

// ExpireSessions deletes sessions past their timeouts.
func (s *Store) ExpireSessions(ctx context.Context) (int64, error) {
	now := s.Now()
	res, err := s.db.SQL.ExecContext(ctx, `DELETE FROM staff_sessions WHERE last_seen_at < $1 OR created_at < $2
		OR (account_id IS NULL AND created_at < $3)`, now.Add(-IdleTimeout), now.Add(-AbsoluteTimeout), now.Add(-VisitorTimeout))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SessionsJob is `staff.sessions`: delete ended sessions.
func SessionsJob(s *Store) jobs.Job {
	return jobs.Job{Name: "staff.sessions", Every: 10 * time.Minute, Doc: "delete staff console sessions past their idle or absolute timeout",
		Run: func(ctx context.Context) error { _, err := s.ExpireSessions(ctx); return err }}
}

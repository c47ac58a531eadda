package staff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/audit"
	"ferry/internal/keys"
	"ferry/internal/store"
)

// Category is the data category staff-account events are recorded under.
const Category = "Staff accounts"

// EnrolmentTTL is how long a one-time enrolment link works.
const EnrolmentTTL = 72 * time.Hour

// Account is one staff member.
type Account struct {
	ID            string
	Username      string
	DisplayName   string
	Role          Role
	Subcontractor bool
	Company       string // subcontractors only
	ContractRef   string // subcontractors only
	ContractEnd   string // YYYY-MM-DD, subcontractors only: access ends when this UTC day ends
	HasPassword   bool   // password and TOTP enrolled
	SSO           bool   // bound to a single sign-on identity
	CreatedAt     time.Time
	EnrolledAt    time.Time // zero until enrolled
	DisabledAt    time.Time // zero unless disabled
	LockedUntil   time.Time // zero unless locked after failed sign-ins
}

// Kind is "employee" or "subcontractor".
func (a Account) Kind() string {
	if a.Subcontractor {
		return "subcontractor"
	}
	return "employee"
}

// AccessEnds is when a subcontractor's access ends (zero for employees).
func (a Account) AccessEnds() time.Time {
	if !a.Subcontractor {
		return time.Time{}
	}
	d, err := time.Parse(time.DateOnly, a.ContractEnd)
	if err != nil {
		return time.Time{}.Add(1) // unparsable: already over
	}
	return d.AddDate(0, 0, 1)
}

// Inactive says why the account may not use the console now, or "" if it may.
func (a Account) Inactive(now time.Time) string {
	switch {
	case !a.DisabledAt.IsZero():
		return "account disabled"
	case a.EnrolledAt.IsZero():
		return "account not enrolled yet"
	case a.Subcontractor && !now.Before(a.AccessEnds()):
		return "subcontractor contract ended " + a.ContractEnd
	}
	return ""
}

// Actor is who does something, for the audit trail.
type Actor struct {
	Name string
	Role Role
}

// CLIActor is an operator at the command line: whoever runs `ferry staff`
// holds the database and the KEK, so the trail names the OS user and says
// no role was checked.
func CLIActor(user string) Actor {
	if strings.TrimSpace(user) == "" {
		user = "unknown"
	}
	return Actor{Name: "cli:" + user}
}

// Store owns staff_accounts and staff_sessions.
type Store struct {
	db    *store.DB
	ring  *keys.Ring
	audit audit.Recorder
}

// NewStore returns the staff store; every decision it makes is recorded in rec.
func NewStore(db *store.DB, ring *keys.Ring, rec audit.Recorder) *Store {
	return &Store{db: db, ring: ring, audit: rec}
}

// Now is the store's clock (the database's, replaceable in tests).
func (s *Store) Now() time.Time { return s.db.Now() }

func (s *Store) record(ctx context.Context, by Actor, action, object, outcome, reason string) error {
	return s.audit.Record(ctx, audit.Event{Actor: by.Name, Role: string(by.Role), Action: action, Category: Category,
		Object: object, Outcome: outcome, Reason: reason})
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// totpAD binds a wrapped TOTP secret to its account and slot.
func totpAD(id, slot string) []byte { return []byte("ferry/staff/totp/" + slot + "\x00" + id) }

var (
	usernameRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{1,39}$`)
	emailRE    = regexp.MustCompile(`[^\s@]+@[^\s@]+\.[^\s@]+`)
)

// NewAccount is what `ferry staff add` and the staff page ask for.
type NewAccount struct {
	Username      string
	DisplayName   string
	Role          Role
	Subcontractor bool
	Company       string
	ContractRef   string
	ContractEnd   string // YYYY-MM-DD
}

func (n *NewAccount) validate(now time.Time) error {
	n.Username = strings.TrimSpace(n.Username)
	n.DisplayName = strings.TrimSpace(n.DisplayName)
	n.Company, n.ContractRef, n.ContractEnd = strings.TrimSpace(n.Company), strings.TrimSpace(n.ContractRef), strings.TrimSpace(n.ContractEnd)
	if !usernameRE.MatchString(n.Username) {
		return apperr.Invalid("username", "a user name is 2–40 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter (not an email address)")
	}
	if len(n.DisplayName) > 100 || emailRE.MatchString(n.DisplayName) {
		return apperr.Invalid("display_name", "a display name is at most 100 characters and not an email address")
	}
	if _, err := ParseRole(string(n.Role)); err != nil {
		return apperr.Invalid("role", "%v", err)
	}
	if !n.Subcontractor {
		if n.Company != "" || n.ContractRef != "" || n.ContractEnd != "" {
			return apperr.Invalid("subcontractor", "company, contract reference and contract end are for subcontractors only")
		}
		return nil
	}
	if n.Company == "" || len(n.Company) > 200 {
		return apperr.Invalid("company", "a subcontractor needs its company (at most 200 characters)")
	}
	if n.ContractRef == "" || len(n.ContractRef) > 100 {
		return apperr.Invalid("contract_ref", "a subcontractor needs the reference of the contract that binds it (at most 100 characters)")
	}
	end, err := time.Parse(time.DateOnly, n.ContractEnd)
	if err != nil {
		return apperr.Invalid("contract_end", "a subcontractor needs its contract end date as YYYY-MM-DD")
	}
	if !end.AddDate(0, 0, 1).After(now) {
		return apperr.Invalid("contract_end", "the contract ended on %s: access would end before it starts", n.ContractEnd)
	}
	return nil
}

// Add creates an account that is not enrolled yet and returns the one-time
// enrolment token for its link (valid EnrolmentTTL). It is recorded.
func (s *Store) Add(ctx context.Context, by Actor, n NewAccount) (Account, string, error) {
	if err := n.validate(s.Now()); err != nil {
		_ = s.record(ctx, by, "staff.add", n.Username, audit.Refused, err.(*apperr.Error).Message)
		return Account{}, "", err
	}
	id := "stf_" + randomToken(12)
	tok := randomToken(32)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var exists int
		tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM staff_accounts WHERE username = $1`, n.Username).Scan(&exists)
		if exists > 0 {
			return apperr.New(apperr.ECONFLICT, "a staff account named %q exists", n.Username)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO staff_accounts (id, username, display_name, role, subcontractor, company, contract_ref, contract_end,
			enrol_token_hash, enrol_expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			id, n.Username, n.DisplayName, string(n.Role), n.Subcontractor, n.Company, n.ContractRef, n.ContractEnd,
			hashToken(tok), tx.Now().Add(EnrolmentTTL), tx.Now())
		return err
	})
	if err != nil {
		if apperr.CodeOf(err) == apperr.ECONFLICT {
			_ = s.record(ctx, by, "staff.add", n.Username, audit.Refused, "user name taken")
		}
		return Account{}, "", err
	}
	detail := "role " + string(n.Role)
	if n.Subcontractor {
		detail += fmt.Sprintf("; subcontractor of %s, contract %s, ends %s", n.Company, n.ContractRef, n.ContractEnd)
	}
	if err := s.record(ctx, by, "staff.add", n.Username, audit.Allowed, detail); err != nil {
		return Account{}, "", err
	}
	a, err := s.ByID(ctx, id)
	return a, tok, err
}

// NewEnrolment issues a fresh enrolment link for an account (a lost link, a
// new authenticator), which has to enrol again; its old credentials stop
// working at once.
func (s *Store) NewEnrolment(ctx context.Context, by Actor, username string) (string, error) {
	tok := randomToken(32)
	var n int64
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE staff_accounts SET enrol_token_hash = $2, enrol_expires_at = $3, password_hash = '',
			totp_secret = NULL, totp_pending = NULL, oidc_issuer = '', oidc_subject = '', enrolled_at = NULL, failed_logins = 0, locked_until = NULL
			WHERE username = $1 AND disabled_at IS NULL`, username, hashToken(tok), tx.Now().Add(EnrolmentTTL))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if n == 0 {
			return apperr.New(apperr.ENOTFOUND, "no active staff account named %q", username)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM staff_sessions WHERE account_id = (SELECT id FROM staff_accounts WHERE username = $1)`, username)
		return err
	})
	outcome := audit.Allowed
	if err != nil {
		outcome = audit.Refused
	}
	if rerr := s.record(ctx, by, "staff.reenrol", username, outcome, ""); rerr != nil && err == nil {
		return "", rerr
	}
	return tok, err
}

// Disable ends an account's access at once: its sessions are deleted.
func (s *Store) Disable(ctx context.Context, by Actor, id string) error {
	var username string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT username FROM staff_accounts WHERE id = $1`, id).Scan(&username); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return apperr.New(apperr.ENOTFOUND, "no staff account %q", id)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staff_accounts SET disabled_at = COALESCE(disabled_at, $2), enrol_token_hash = NULL WHERE id = $1`, id, tx.Now()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM staff_sessions WHERE account_id = $1`, id)
		return err
	})
	if err != nil {
		return err
	}
	return s.record(ctx, by, "staff.disable", username, audit.Allowed, "")
}

const accountCols = `id, username, display_name, role, subcontractor, company, contract_ref, contract_end, password_hash <> '', oidc_subject <> '',
	created_at, enrolled_at, disabled_at, locked_until`

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var role string
	var enrolled, disabled, locked sql.NullTime
	err := sc.Scan(&a.ID, &a.Username, &a.DisplayName, &role, &a.Subcontractor, &a.Company, &a.ContractRef, &a.ContractEnd,
		&a.HasPassword, &a.SSO, &a.CreatedAt, &enrolled, &disabled, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return a, apperr.New(apperr.ENOTFOUND, "no such staff account")
	}
	a.Role = Role(role)
	a.CreatedAt = a.CreatedAt.UTC()
	a.EnrolledAt, a.DisabledAt, a.LockedUntil = enrolled.Time.UTC(), disabled.Time.UTC(), locked.Time.UTC()
	if !enrolled.Valid {
		a.EnrolledAt = time.Time{}
	}
	if !disabled.Valid {
		a.DisabledAt = time.Time{}
	}
	if !locked.Valid {
		a.LockedUntil = time.Time{}
	}
	return a, err
}

// ByID returns one account.
func (s *Store) ByID(ctx context.Context, id string) (Account, error) {
	return scanAccount(s.db.SQL.QueryRowContext(ctx, `SELECT `+accountCols+` FROM staff_accounts WHERE id = $1`, id))
}

// ByUsername returns one account.
func (s *Store) ByUsername(ctx context.Context, username string) (Account, error) {
	return scanAccount(s.db.SQL.QueryRowContext(ctx, `SELECT `+accountCols+` FROM staff_accounts WHERE username = $1`, username))
}

// List returns every account, by user name.
func (s *Store) List(ctx context.Context) ([]Account, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+accountCols+` FROM staff_accounts ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Enrolment is an open enrolment: the account and the TOTP secret to put
// into an authenticator app.
type Enrolment struct {
	Account    Account
	TOTPSecret string
	TOTPURL    string
}

var errEnrolLink = apperr.New(apperr.ENOTFOUND, "this enrolment link is not valid: it was used, has expired or never existed; ask an admin for a new one")

// OpenEnrolment finds the account of an enrolment token and the TOTP secret
// it will use (made on first opening, the same afterwards).
func (s *Store) OpenEnrolment(ctx context.Context, token string) (Enrolment, error) {
	return s.openEnrolment(ctx, hashToken(token))
}

func (s *Store) openEnrolment(ctx context.Context, tokenHash string) (Enrolment, error) {
	var id, username string
	var pending []byte
	var expires time.Time
	err := s.db.SQL.QueryRowContext(ctx, `SELECT id, username, totp_pending, enrol_expires_at FROM staff_accounts
		WHERE enrol_token_hash = $1 AND disabled_at IS NULL`, tokenHash).Scan(&id, &username, &pending, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !s.Now().Before(expires)) {
		return Enrolment{}, errEnrolLink
	}
	if err != nil {
		return Enrolment{}, err
	}
	var secret string
	if pending == nil {
		secret, _, err = newTOTP(username)
		if err != nil {
			return Enrolment{}, err
		}
		w, err := s.ring.KEK().Encrypt([]byte(secret), totpAD(id, "pending"))
		if err != nil {
			return Enrolment{}, fmt.Errorf("staff: wrap TOTP secret: %w", err)
		}
		if _, err := s.db.SQL.ExecContext(ctx, `UPDATE staff_accounts SET totp_pending = $2 WHERE id = $1 AND totp_pending IS NULL`, id, w); err != nil {
			return Enrolment{}, err
		}
		return s.openEnrolment(ctx, tokenHash) // another request may have won: use what is stored
	}
	b, err := s.ring.KEK().Decrypt(pending, totpAD(id, "pending"))
	if err != nil {
		return Enrolment{}, fmt.Errorf("staff: unwrap TOTP secret: %w", err)
	}
	secret = string(b)
	a, err := s.ByID(ctx, id)
	return Enrolment{Account: a, TOTPSecret: secret, TOTPURL: TOTPURL(username, secret)}, err
}

// CompleteEnrolment sets the password and confirms the authenticator with a
// current code; the link then stops working.
func (s *Store) CompleteEnrolment(ctx context.Context, token, password, code string) (Account, error) {
	en, err := s.OpenEnrolment(ctx, token)
	if err != nil {
		return Account{}, err
	}
	who := Actor{Name: en.Account.Username, Role: en.Account.Role}
	if err := checkPasswordPolicy(en.Account.Username, password); err != nil {
		return Account{}, apperr.Invalid("password", "%s", err.Error())
	}
	step := totpStep(en.TOTPSecret, strings.TrimSpace(code), s.Now())
	if step == 0 {
		_ = s.record(ctx, who, "staff.enrol", en.Account.Username, audit.Refused, "wrong TOTP code")
		return Account{}, apperr.Invalid("code", "that code does not match: check the authenticator app's clock and enter the current 6-digit code")
	}
	phc, err := hashPassword(password)
	if err != nil {
		return Account{}, err
	}
	w, err := s.ring.KEK().Encrypt([]byte(en.TOTPSecret), totpAD(en.Account.ID, "active"))
	if err != nil {
		return Account{}, err
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE staff_accounts SET password_hash = $2, totp_secret = $3, totp_pending = NULL, totp_last_step = $4,
			enrol_token_hash = NULL, enrol_expires_at = NULL, enrolled_at = $5 WHERE id = $1 AND enrol_token_hash = $6`,
			en.Account.ID, phc, w, step, tx.Now(), hashToken(token))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errEnrolLink
		}
		return nil
	})
	if err != nil {
		return Account{}, err
	}
	if err := s.record(ctx, who, "staff.enrol", en.Account.Username, audit.Allowed, "password and TOTP"); err != nil {
		return Account{}, err
	}
	return s.ByID(ctx, en.Account.ID)
}

// EnrolWithSSO binds the account of an enrolment (named by the hash of its
// token, as the sign-on round trip carries it) to a single sign-on identity:
// issuer and subject of a verified ID token.
func (s *Store) EnrolWithSSO(ctx context.Context, tokenHash, issuer, subject string) (Account, error) {
	en, err := s.openEnrolment(ctx, tokenHash)
	if err != nil {
		return Account{}, err
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var taken int
		tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM staff_accounts WHERE oidc_issuer = $1 AND oidc_subject = $2`, issuer, subject).Scan(&taken)
		if taken > 0 {
			return apperr.New(apperr.ECONFLICT, "this single sign-on identity already belongs to another staff account")
		}
		res, err := tx.ExecContext(ctx, `UPDATE staff_accounts SET oidc_issuer = $2, oidc_subject = $3, totp_pending = NULL,
			enrol_token_hash = NULL, enrol_expires_at = NULL, enrolled_at = $4 WHERE id = $1 AND enrol_token_hash = $5`,
			en.Account.ID, issuer, subject, tx.Now(), tokenHash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errEnrolLink
		}
		return nil
	})
	outcome := audit.Allowed
	if err != nil {
		outcome = audit.Refused
	}
	if rerr := s.record(ctx, Actor{Name: en.Account.Username, Role: en.Account.Role}, "staff.enrol", en.Account.Username, outcome, "single sign-on"); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return Account{}, err
	}
	return s.ByID(ctx, en.Account.ID)
}

var _ keys.Wrapped = (*Store)(nil)

// RewrapKEK seals again, with kek, every TOTP secret not under the KEK's
// primary version: rotation and retirement call it (keys.Wrapped), so staff
// can still sign in after an old version is retired.
func (s *Store) RewrapKEK(ctx context.Context, kek keys.KEK) (int, error) {
	n := 0
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		type row struct {
			id              string
			active, pending []byte
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, totp_secret, totp_pending FROM staff_accounts WHERE totp_secret IS NOT NULL OR totp_pending IS NOT NULL`)
		if err != nil {
			return err
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.active, &r.pending); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		re := func(id, slot string, w []byte) ([]byte, bool, error) {
			if w == nil {
				return nil, false, nil
			}
			pt, err := kek.Decrypt(w, totpAD(id, slot))
			if err != nil {
				return nil, false, fmt.Errorf("staff: TOTP secret of %s cannot be unwrapped with the KEK", id)
			}
			nw, err := kek.Encrypt(pt, totpAD(id, slot))
			if err != nil {
				return nil, false, err
			}
			before, _ := keys.KEKVersionOf(w)
			after, _ := keys.KEKVersionOf(nw)
			if before == after {
				return w, false, nil
			}
			return nw, true, nil
		}
		for _, r := range all {
			a, movedA, err := re(r.id, "active", r.active)
			if err != nil {
				return err
			}
			p, movedP, err := re(r.id, "pending", r.pending)
			if err != nil {
				return err
			}
			if !movedA && !movedP {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE staff_accounts SET totp_secret = $2, totp_pending = $3 WHERE id = $1`, r.id, a, p); err != nil {
				return err
			}
			if movedA {
				n++
			}
			if movedP {
				n++
			}
		}
		return nil
	})
	return n, err
}

// UnderKEKVersion counts the TOTP secrets sealed under KEK version v (0:
// sealed before KEK versions), so retirement waits for them.
func (s *Store) UnderKEKVersion(ctx context.Context, v int64) (int, error) {
	n := 0
	for _, col := range []string{"totp_secret", "totp_pending"} {
		rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+col+` FROM staff_accounts WHERE `+col+` IS NOT NULL`)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var ct []byte
			if err := rows.Scan(&ct); err != nil {
				rows.Close()
				return 0, err
			}
			if got, ok := keys.KEKVersionOf(ct); (ok && got == v) || (!ok && v == 0) {
				n++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

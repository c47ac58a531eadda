package staff_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/audit"
	"ferry/internal/keys"
	"ferry/internal/staff"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

type fixture struct {
	db    *store.DB
	ring  *keys.Ring
	trail *audit.Trail
	staff *staff.Store
	now   time.Time
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, ring: keys.NewRing(db, kek), now: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
	db.SetClock(func() time.Time { return f.now })
	f.trail = audit.New(db, f.ring, audit.DirTarget{Dir: t.TempDir()}, nil)
	f.staff = staff.NewStore(db, f.ring, f.trail)
	return f
}

func (f *fixture) tick(d time.Duration) { f.now = f.now.Add(d) }

var admin = staff.CLIActor("root")

const password = "correct horse battery staple"

// enrol adds an account and enrols it with a password and TOTP through the
// same steps the enrolment page takes; it returns the TOTP secret.
func (f *fixture) enrol(t *testing.T, n staff.NewAccount) (staff.Account, string) {
	t.Helper()
	ctx := context.Background()
	a, tok, err := f.staff.Add(ctx, admin, n)
	if err != nil {
		t.Fatal(err)
	}
	en, err := f.staff.OpenEnrolment(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := staff.TOTPCode(en.TOTPSecret, f.now)
	if _, err := f.staff.CompleteEnrolment(ctx, tok, password, code); err != nil {
		t.Fatal(err)
	}
	f.tick(staff.IdleTimeout / 60) // the enrolment code's step is used
	return a, en.TOTPSecret
}

func (f *fixture) code(secret string) string {
	c, _ := staff.TOTPCode(secret, f.now)
	return c
}

// lastAudit returns the newest trail row.
func (f *fixture) lastAudit(t *testing.T) audit.Record {
	t.Helper()
	rows, err := f.trail.List(context.Background(), audit.Filter{Limit: 1})
	if err != nil || len(rows) == 0 {
		t.Fatalf("audit trail: %v %d rows", err, len(rows))
	}
	return rows[0]
}

func (f *fixture) mustAudit(t *testing.T, action, outcome, reasonPart string) {
	t.Helper()
	r := f.lastAudit(t)
	if r.Action != action || r.Outcome != outcome || !strings.Contains(r.Reason, reasonPart) {
		t.Fatalf("last audit row = %s %s %q, want %s %s containing %q", r.Action, r.Outcome, r.Reason, action, outcome, reasonPart)
	}
}

func TestContractEnrolledStaffSignInWithPasswordAndTOTP(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		a, secret := f.enrol(t, staff.NewAccount{Username: "alice", DisplayName: "Alice", Role: staff.Support})
		ss, err := f.staff.SignIn(ctx, "alice", password, f.code(secret))
		if err != nil {
			t.Fatal(err)
		}
		f.mustAudit(t, "staff.signin", audit.Allowed, "password and TOTP")
		p, err := f.staff.Authenticate(ctx, ss.Token)
		if err != nil || p.ID != a.ID || p.Role != staff.Support || !p.CheckCSRF(ss.CSRF) || p.CheckCSRF("") || p.CheckCSRF(ss.CSRF+"x") {
			t.Fatalf("authenticate: %+v %v", p, err)
		}
		// The database holds neither the session token nor the TOTP secret
		// nor the password in the clear.
		for _, secretish := range []string{ss.Token, secret, password} {
			var n int
			db.SQL.QueryRow(`SELECT COUNT(*) FROM staff_accounts a, staff_sessions s WHERE a.password_hash = $1 OR s.id_hash = $1
				OR a.username = $1`, secretish).Scan(&n)
			if n != 0 {
				t.Errorf("%q is stored in the clear", secretish[:4])
			}
		}
		var phc string
		db.SQL.QueryRow(`SELECT password_hash FROM staff_accounts WHERE id = $1`, a.ID).Scan(&phc)
		if !strings.HasPrefix(phc, "$argon2id$v=19$m=47104,t=1,p=1$") {
			t.Errorf("password hash = %.30s…, want argon2id", phc)
		}
		if err := f.staff.SignOut(ctx, ss.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := f.staff.Authenticate(ctx, ss.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Errorf("after sign-out: %v", err)
		}
	})
}

func TestContractWrongReplayedAndMissingCodesAreRefusedAndRecorded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		_, secret := f.enrol(t, staff.NewAccount{Username: "bob", Role: staff.Developer})
		good := f.code(secret)
		wrong := "000000"
		if wrong == good {
			wrong = "111111"
		}
		// The right code works once; the same code again is a replay.
		if _, err := f.staff.SignIn(ctx, "bob", password, good); err != nil {
			t.Fatal(err)
		}
		if _, err := f.staff.SignIn(ctx, "bob", password, good); !errors.Is(err, staff.ErrSignIn) {
			t.Fatalf("replayed code: %v", err)
		}
		f.mustAudit(t, "staff.signin", audit.Refused, "replayed TOTP code")
		// So is the previous step's code, still inside the drift window.
		f.tick(30 * time.Second)
		prev, _ := staff.TOTPCode(secret, f.now.Add(-30*time.Second))
		if _, err := f.staff.SignIn(ctx, "bob", password, prev); !errors.Is(err, staff.ErrSignIn) {
			t.Fatalf("code of an earlier step than one used: %v", err)
		}
		f.mustAudit(t, "staff.signin", audit.Refused, "replayed TOTP code")
		if _, err := f.staff.SignIn(ctx, "bob", password, f.code(secret)); err != nil {
			t.Fatalf("next step's code: %v", err)
		}
		good = f.code(secret)
		f.tick(31 * time.Second) // the cases below are not replays
		if wrong == f.code(secret) {
			wrong = "222222"
		}
		cases := []struct {
			user, pass, code, why string
		}{
			{"bob", password, wrong, "wrong TOTP code"},
			{"bob", password, "", "wrong TOTP code"},
			{"bob", password, good + "0", "wrong TOTP code"},
			{"bob", "not the password!", good, "wrong password"},
			{"mallory", password, good, "unknown user name"},
		}
		for _, c := range cases {
			if _, err := f.staff.SignIn(ctx, c.user, c.pass, c.code); !errors.Is(err, staff.ErrSignIn) {
				t.Fatalf("%+v: %v", c, err)
			}
			f.mustAudit(t, "staff.signin", audit.Refused, c.why)
		}
		// A code from the authenticator 90 s ago is outside the window.
		old, _ := staff.TOTPCode(secret, f.now.Add(-90*time.Second))
		if _, err := f.staff.SignIn(ctx, "bob", password, old); !errors.Is(err, staff.ErrSignIn) {
			t.Fatalf("stale code: %v", err)
		}
	})
}

func TestContractRepeatedFailuresLockTheAccount(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		_, secret := f.enrol(t, staff.NewAccount{Username: "carol", Role: staff.Auditor})
		for i := range staff.MaxFailures {
			if _, err := f.staff.SignIn(ctx, "carol", "guess number "+string(rune('a'+i)), f.code(secret)); !errors.Is(err, staff.ErrSignIn) {
				t.Fatal(err)
			}
		}
		f.mustAudit(t, "staff.signin", audit.Refused, "account locked for 15m0s after 5 failures")
		// Locked: even the right password and code are refused.
		if _, err := f.staff.SignIn(ctx, "carol", password, f.code(secret)); !errors.Is(err, staff.ErrSignIn) {
			t.Fatalf("locked account signed in: %v", err)
		}
		f.mustAudit(t, "staff.signin", audit.Refused, "locked")
		f.tick(staff.LockoutPeriod + time.Second)
		if _, err := f.staff.SignIn(ctx, "carol", password, f.code(secret)); err != nil {
			t.Fatalf("after the lockout: %v", err)
		}
	})
}

func TestContractSessionsEndAfterIdleAndAbsoluteTimeouts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		_, secret := f.enrol(t, staff.NewAccount{Username: "dave", Role: staff.Admin})
		signIn := func() string {
			f.tick(31 * time.Second)
			ss, err := f.staff.SignIn(ctx, "dave", password, f.code(secret))
			if err != nil {
				t.Fatal(err)
			}
			return ss.Token
		}
		// Idle: 29 min between requests keeps it alive, 30 ends it.
		tok := signIn()
		for range 3 {
			f.tick(staff.IdleTimeout - time.Minute)
			if _, err := f.staff.Authenticate(ctx, tok); err != nil {
				t.Fatalf("active session ended: %v", err)
			}
		}
		f.tick(staff.IdleTimeout)
		if _, err := f.staff.Authenticate(ctx, tok); !errors.Is(err, staff.ErrSessionExpired) {
			t.Fatalf("idle session: %v", err)
		}
		f.mustAudit(t, "staff.session.end", audit.Refused, "idle")
		// Absolute: busy all day, still ends at 12 h.
		tok = signIn()
		for elapsed := time.Duration(0); elapsed < staff.AbsoluteTimeout-20*time.Minute; elapsed += 20 * time.Minute {
			f.tick(20 * time.Minute)
			if _, err := f.staff.Authenticate(ctx, tok); err != nil {
				t.Fatalf("session ended after %s: %v", elapsed, err)
			}
		}
		f.tick(20 * time.Minute)
		if _, err := f.staff.Authenticate(ctx, tok); !errors.Is(err, staff.ErrSessionExpired) {
			t.Fatalf("12 h session: %v", err)
		}
		f.mustAudit(t, "staff.session.end", audit.Refused, "absolute")
		// The expiry job deletes what is left.
		signIn()
		f.tick(staff.AbsoluteTimeout)
		if n, err := f.staff.ExpireSessions(ctx); err != nil || n == 0 {
			t.Errorf("expire: %d %v", n, err)
		}
	})
}

func TestContractSubcontractorAccessEndsWithTheContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		end := f.now.AddDate(0, 0, 2).Format(time.DateOnly)
		a, secret := f.enrol(t, staff.NewAccount{Username: "erin", Role: staff.Developer, Subcontractor: true,
			Company: "Contractor GmbH", ContractRef: "C-2026-17", ContractEnd: end})
		if a.Kind() != "subcontractor" || a.Company != "Contractor GmbH" || a.ContractEnd != end {
			t.Fatalf("account = %+v", a)
		}
		ss, err := f.staff.SignIn(ctx, "erin", password, f.code(secret))
		if err != nil {
			t.Fatal(err)
		}
		// The last day of the contract still works; at midnight UTC after it
		// the open session ends and signing in is refused.
		midnight := a.AccessEnds()
		for f.now.Add(20 * time.Minute).Before(midnight) {
			f.tick(20 * time.Minute)
			if f.now.Sub(ss.CreatedAt) > 11*time.Hour {
				f.tick(31 * time.Second)
				if ss, err = f.staff.SignIn(ctx, "erin", password, f.code(secret)); err != nil {
					t.Fatalf("sign-in at %s: %v", f.now, err)
				}
			}
			if _, err := f.staff.Authenticate(ctx, ss.Token); err != nil {
				t.Fatalf("at %s, before the contract ended: %v", f.now, err)
			}
		}
		f.now = midnight
		if _, err := f.staff.Authenticate(ctx, ss.Token); !errors.Is(err, staff.ErrSessionExpired) {
			t.Fatalf("session after the contract ended: %v", err)
		}
		f.mustAudit(t, "staff.session.end", audit.Refused, "contract ended "+end)
		f.tick(31 * time.Second)
		if _, err := f.staff.SignIn(ctx, "erin", password, f.code(secret)); !errors.Is(err, staff.ErrSignIn) {
			t.Fatalf("sign-in after the contract ended: %v", err)
		}
		f.mustAudit(t, "staff.signin", audit.Refused, "contract ended")
	})
}

// A session id obtained before sign-in (a visitor's, or one an attacker
// planted) never becomes a signed-in session.
func TestContractVisitorSessionsAreNeverPromoted(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		_, secret := f.enrol(t, staff.NewAccount{Username: "frank", Role: staff.Support})
		v, err := f.staff.NewVisitor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.staff.Authenticate(ctx, v.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("visitor session authenticated: %v", err)
		}
		ss, err := f.staff.SignIn(ctx, "frank", password, f.code(secret))
		if err != nil {
			t.Fatal(err)
		}
		if ss.Token == v.Token || ss.CSRF == v.CSRF {
			t.Fatal("sign-in reused the visitor's session")
		}
		if _, err := f.staff.Authenticate(ctx, v.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("visitor session after sign-in: %v", err)
		}
		if _, err := f.staff.Visitor(ctx, ss.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatal("a signed-in session is accepted as a visitor's")
		}
		f.tick(staff.VisitorTimeout)
		if _, err := f.staff.Visitor(ctx, v.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("visitor session after its timeout: %v", err)
		}
	})
}

func TestContractBadAccountsAreRefusedAndChangeNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		yesterday := f.now.AddDate(0, 0, -1).Format(time.DateOnly)
		next := f.now.AddDate(0, 1, 0).Format(time.DateOnly)
		cases := []struct {
			n     staff.NewAccount
			field string
		}{
			{staff.NewAccount{Username: "", Role: staff.Support}, "username"},
			{staff.NewAccount{Username: "alice@example.com", Role: staff.Support}, "username"},
			{staff.NewAccount{Username: "Alice", Role: staff.Support}, "username"},
			{staff.NewAccount{Username: "a", Role: staff.Support}, "username"},
			{staff.NewAccount{Username: strings.Repeat("a", 41), Role: staff.Support}, "username"},
			{staff.NewAccount{Username: "alice", Role: "root"}, "role"},
			{staff.NewAccount{Username: "alice", Role: ""}, "role"},
			{staff.NewAccount{Username: "alice", Role: staff.Support, DisplayName: "alice@example.com"}, "display_name"},
			{staff.NewAccount{Username: "alice", Role: staff.Support, Company: "X"}, "subcontractor"},
			{staff.NewAccount{Username: "alice", Role: staff.Support, Subcontractor: true, ContractRef: "C1", ContractEnd: next}, "company"},
			{staff.NewAccount{Username: "alice", Role: staff.Support, Subcontractor: true, Company: "X", ContractEnd: next}, "contract_ref"},
			{staff.NewAccount{Username: "alice", Role: staff.Support, Subcontractor: true, Company: "X", ContractRef: "C1"}, "contract_end"},
			{staff.NewAccount{Username: "alice", Role: staff.Support, Subcontractor: true, Company: "X", ContractRef: "C1", ContractEnd: "31.12.2026"}, "contract_end"},
			{staff.NewAccount{Username: "alice", Role: staff.Support, Subcontractor: true, Company: "X", ContractRef: "C1", ContractEnd: yesterday}, "contract_end"},
		}
		for _, c := range cases {
			_, _, err := f.staff.Add(ctx, admin, c.n)
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Code != apperr.EINVALID || ae.Field != c.field {
				t.Errorf("%+v: %v, want invalid %s", c.n, err, c.field)
			}
		}
		if list, _ := f.staff.List(ctx); len(list) != 0 {
			t.Errorf("refused accounts were created: %+v", list)
		}
		if _, _, err := f.staff.Add(ctx, admin, staff.NewAccount{Username: "alice", Role: staff.Support}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.staff.Add(ctx, admin, staff.NewAccount{Username: "alice", Role: staff.Admin}); apperr.CodeOf(err) != apperr.ECONFLICT {
			t.Errorf("duplicate user name: %v", err)
		}
		// Enrolment: bad passwords and codes change nothing; an expired or
		// used link is refused.
		_, tok, _ := f.staff.Add(ctx, admin, staff.NewAccount{Username: "gina", Role: staff.Support})
		en, err := f.staff.OpenEnrolment(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := f.staff.OpenEnrolment(ctx, tok); again.TOTPSecret != en.TOTPSecret {
			t.Error("reopening the link changed the TOTP secret")
		}
		for _, c := range []struct{ pass, code, field string }{
			{"short", f.code(en.TOTPSecret), "password"},
			{"gina-is-my-password", f.code(en.TOTPSecret), "password"},
			{strings.Repeat("x", 257), f.code(en.TOTPSecret), "password"},
			{password, "12345", "code"},
		} {
			_, err := f.staff.CompleteEnrolment(ctx, tok, c.pass, c.code)
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Field != c.field {
				t.Errorf("enrol with %q/%q: %v, want invalid %s", c.pass, c.code, err, c.field)
			}
		}
		if a, _ := f.staff.ByUsername(ctx, "gina"); !a.EnrolledAt.IsZero() || a.HasPassword {
			t.Error("a refused enrolment changed the account")
		}
		if _, err := f.staff.CompleteEnrolment(ctx, tok, password, f.code(en.TOTPSecret)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.staff.OpenEnrolment(ctx, tok); apperr.CodeOf(err) != apperr.ENOTFOUND {
			t.Errorf("used link: %v", err)
		}
		_, tok2, _ := f.staff.Add(ctx, admin, staff.NewAccount{Username: "hank", Role: staff.Support})
		f.tick(staff.EnrolmentTTL)
		if _, err := f.staff.OpenEnrolment(ctx, tok2); apperr.CodeOf(err) != apperr.ENOTFOUND {
			t.Errorf("expired link: %v", err)
		}
	})
}

func TestContractDisabledAccountsLoseTheirSessions(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		a, secret := f.enrol(t, staff.NewAccount{Username: "ivan", Role: staff.Support})
		ss, _ := f.staff.SignIn(ctx, "ivan", password, f.code(secret))
		if err := f.staff.Disable(ctx, admin, a.ID); err != nil {
			t.Fatal(err)
		}
		f.mustAudit(t, "staff.disable", audit.Allowed, "")
		if _, err := f.staff.Authenticate(ctx, ss.Token); err == nil {
			t.Error("a disabled account's session still works")
		}
		f.tick(time.Minute)
		if _, err := f.staff.SignIn(ctx, "ivan", password, f.code(secret)); !errors.Is(err, staff.ErrSignIn) {
			t.Errorf("disabled account signed in: %v", err)
		}
	})
}

func TestContractBreakGlassRecordsBeforeItGrants(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		_, s1 := f.enrol(t, staff.NewAccount{Username: "sue", Role: staff.Support})
		_, s2 := f.enrol(t, staff.NewAccount{Username: "ada", Role: staff.Admin})
		login := func(u, secret string) staff.Principal {
			ss, err := f.staff.SignIn(ctx, u, password, f.code(secret))
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.staff.Authenticate(ctx, ss.Token)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		sue, ada := login("sue", s1), login("ada", s2)
		tg := staff.Target{Tenant: "ten_x", Object: "20260504-abc"}
		if g, err := f.staff.BreakGlass(ctx, ada, staff.DecryptRequestLog, tg, "looking at a 401 error", "SUP-1"); apperr.CodeOf(err) != apperr.EFORBIDDEN || g.Permits(staff.DecryptRequestLog, tg.Object) {
			t.Fatalf("admin break-glass: %v", err)
		}
		f.mustAudit(t, "reqlog.decrypt", audit.Refused, "role admin lacks reqlog.decrypt")
		for _, c := range []struct{ reason, ticket, field string }{
			{"", "SUP-1", "reason"}, {"too short", "SUP-1", "reason"}, {"customer bob@example.com says 401", "SUP-1", "reason"},
			{"looking at a 401 error", "", "ticket"}, {"looking at a 401 error", "bob@example.com", "ticket"}, {"looking at a 401 error", "SUP 1", "ticket"},
		} {
			_, err := f.staff.BreakGlass(ctx, sue, staff.DecryptRequestLog, tg, c.reason, c.ticket)
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Field != c.field {
				t.Errorf("%q/%q: %v, want invalid %s", c.reason, c.ticket, err, c.field)
			}
			r := f.lastAudit(t)
			if r.Outcome != audit.Refused || strings.Contains(r.Reason, "@") || strings.Contains(r.Ticket, "@") {
				t.Errorf("refusal recorded as %+v", r)
			}
		}
		g, err := f.staff.BreakGlass(ctx, sue, staff.DecryptRequestLog, tg, "customer reports 401 on the OData feed", "SUP-1234")
		if err != nil {
			t.Fatal(err)
		}
		r := f.lastAudit(t)
		if r.Actor != "sue" || r.Role != "support" || r.Action != "reqlog.decrypt" || r.Category != "Logs Data" || r.Object != tg.Object ||
			r.Reason != "customer reports 401 on the OData feed" || r.Ticket != "SUP-1234" || r.Outcome != audit.Allowed || r.TenantPseudonym == "" {
			t.Errorf("recorded %+v", r)
		}
		if !g.Permits(staff.DecryptRequestLog, tg.Object) || g.Permits(staff.DecryptRequestLog, "another") || g.Permits(staff.ViewTenants, tg.Object) {
			t.Error("the grant opens more than its one object")
		}
		var zero staff.Grant
		var nilGrant *staff.Grant
		if zero.Permits(staff.DecryptRequestLog, "") || nilGrant.Permits(staff.DecryptRequestLog, tg.Object) {
			t.Error("a zero grant permits something")
		}
	})
}

// TOTP secrets are sealed with the ring's KEK; registered with the ring,
// they move with a rotation, so the old KEK version can be retired and staff
// still sign in (and an unregistered store would hold retirement off).
func TestContractTOTPSecretsFollowKEKRotationAndRetirement(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.ring.RegisterWrapped("staff TOTP secrets", f.staff)
		_, secret := f.enrol(t, staff.NewAccount{Username: "rita", Role: staff.Support})
		_, tok, _ := f.staff.Add(ctx, admin, staff.NewAccount{Username: "pending", Role: staff.Support})
		if _, err := f.staff.OpenEnrolment(ctx, tok); err != nil { // seals a pending secret
			t.Fatal(err)
		}
		if n, _ := f.staff.UnderKEKVersion(ctx, 1); n != 2 {
			t.Fatalf("%d secrets under version 1, want 2", n)
		}
		res, err := f.ring.Rotate(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Other != 2 {
			t.Errorf("rotation moved %d staff secrets, want 2", res.Other)
		}
		if _, err := f.ring.Retire(ctx, 1); err != nil {
			t.Fatalf("retire version 1: %v", err)
		}
		if n, _ := f.staff.UnderKEKVersion(ctx, 1); n != 0 {
			t.Errorf("%d secrets still under the retired version", n)
		}
		if _, err := f.staff.SignIn(ctx, "rita", password, f.code(secret)); err != nil {
			t.Fatalf("sign-in after the KEK rotation: %v", err)
		}
		if _, err := f.staff.OpenEnrolment(ctx, tok); err != nil {
			t.Fatalf("open enrolment after the KEK rotation: %v", err)
		}
	})
}

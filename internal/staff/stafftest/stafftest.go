// Package stafftest signs staff members in for other areas' tests through
// the real enrolment, password + TOTP sign-in and break-glass steps — never
// around them — so a test that reads sensitive data leaves the same audit
// rows production would.
package stafftest

import (
	"context"
	"testing"
	"time"

	"ferry/internal/staff"
)

// Password is the password SignedIn enrols with.
const Password = "stafftest passphrase 42"

// SignedIn adds an account with role, enrols it and signs it in; it returns
// the principal of the new session.
func SignedIn(t testing.TB, s *staff.Store, username string, role staff.Role) staff.Principal {
	t.Helper()
	ctx := context.Background()
	_, tok, err := s.Add(ctx, staff.CLIActor("stafftest"), staff.NewAccount{Username: username, Role: role})
	if err != nil {
		t.Fatalf("stafftest: add %s: %v", username, err)
	}
	en, err := s.OpenEnrolment(ctx, tok)
	if err != nil {
		t.Fatalf("stafftest: open enrolment: %v", err)
	}
	code, _ := staff.TOTPCode(en.TOTPSecret, s.Now())
	if _, err := s.CompleteEnrolment(ctx, tok, Password, code); err != nil {
		t.Fatalf("stafftest: enrol: %v", err)
	}
	// The next time step's code: the enrolment used this one.
	next, _ := staff.TOTPCode(en.TOTPSecret, s.Now().Add(30*time.Second))
	ss, err := s.SignIn(ctx, username, Password, next)
	if err != nil {
		t.Fatalf("stafftest: sign in: %v", err)
	}
	p, err := s.Authenticate(ctx, ss.Token)
	if err != nil {
		t.Fatalf("stafftest: authenticate: %v", err)
	}
	return p
}

// Grant breaks glass for one object as p, with a valid reason and ticket.
func Grant(t testing.TB, s *staff.Store, p staff.Principal, perm staff.Permission, tenant, object string) *staff.Grant {
	t.Helper()
	g, err := s.BreakGlass(context.Background(), p, perm, staff.Target{Tenant: tenant, Object: object}, "stafftest: checking the stored request", "TEST-1")
	if err != nil {
		t.Fatalf("stafftest: break glass: %v", err)
	}
	return g
}

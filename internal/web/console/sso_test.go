package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"ferry/internal/audit"
	"ferry/internal/egress"
	"ferry/internal/staff"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/web/console"
)

// ssoEnv runs oauth2-proxy's mockoidc — a real OIDC provider (discovery,
// JWKS, authorization code with PKCE, RS256 ID tokens) — and a console
// whose single sign-on reaches it through the egress gate.
func ssoEnv(t *testing.T, db *store.DB) (*env, *mockoidc.MockOIDC) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("mockoidc: %v", err)
	}
	t.Cleanup(func() { m.Shutdown() })
	gate, err := egress.New(egress.Config{Region: "us-west-2", AllowLoopback: true, StaffSSOIssuer: m.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	var sso *console.SSO
	e := newEnv(t, db, func(d *console.Deps) {
		sso = &console.SSO{Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret, Client: gate.Client(egress.StaffSSO)}
		d.SSO = sso
	})
	sso.RedirectURL = e.srv.URL + "/console/sso/callback"
	return e, m
}

// ssoBrowser follows redirects across the provider and the console, as a
// browser does.
func ssoBrowser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func fetch(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestSingleSignOnEndToEndWithARealOIDCProvider(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e, m := ssoEnv(t, db)
		_, tok, err := e.staff.Add(ctx, staff.CLIActor("test"), staff.NewAccount{Username: "olga", Role: staff.Developer})
		if err != nil {
			t.Fatal(err)
		}
		// Enrol: the enrolment link's round trip binds the provider's subject.
		m.QueueUser(&mockoidc.MockUser{Subject: "olga-subject", Email: "olga@vendor.example", EmailVerified: true})
		b := ssoBrowser(t)
		if code, body := fetch(t, b, e.srv.URL+"/console/sso?enrol="+tok); code != 200 || !strings.Contains(body, "Signed in") {
			t.Fatalf("enrol with SSO: %d %.300s", code, body)
		}
		if code, body := fetch(t, b, e.srv.URL+"/console/"); code != 200 || !strings.Contains(body, `id="whoami">olga`) {
			t.Fatalf("console after SSO enrolment: %d", code)
		}
		acc, _ := e.staff.ByUsername(ctx, "olga")
		if !acc.SSO || acc.HasPassword || acc.EnrolledAt.IsZero() {
			t.Errorf("account = %+v", acc)
		}
		// The provider's email claim is not kept anywhere.
		var n int
		db.SQL.QueryRow(`SELECT COUNT(*) FROM staff_accounts WHERE username LIKE '%@%' OR display_name LIKE '%@%' OR oidc_subject LIKE '%@%'`).Scan(&n)
		if n != 0 {
			t.Error("an email address from the ID token was stored")
		}
		if code, _ := fetch(t, b, e.srv.URL+"/console/sso?enrol="+tok); code != http.StatusNotFound {
			t.Errorf("enrolment link reused: %d", code)
		}

		// Sign in again, in a new browser, with the same identity.
		m.QueueUser(&mockoidc.MockUser{Subject: "olga-subject"})
		b2 := ssoBrowser(t)
		if code, _ := fetch(t, b2, e.srv.URL+"/console/sso"); code != 200 {
			t.Fatalf("SSO sign-in: %d", code)
		}
		if code, body := fetch(t, b2, e.srv.URL+"/console/reqlog"); code != 200 || !strings.Contains(body, "Request log") {
			t.Fatalf("developer page after SSO: %d", code)
		}
		if r := e.lastAudit(); r.Action != "staff.signin" || r.Outcome != audit.Allowed || r.Reason != "single sign-on" || r.Actor != "olga" {
			t.Errorf("last audit %+v", r)
		}

		// An identity bound to nobody is refused and recorded.
		m.QueueUser(&mockoidc.MockUser{Subject: "stranger"})
		before := e.auditCount()
		if code, _ := fetch(t, ssoBrowser(t), e.srv.URL+"/console/sso"); code != http.StatusUnauthorized {
			t.Errorf("unbound identity: %d", code)
		}
		mustRefusal(t, e, before, "staff.signin", "not bound")
	})
}

func TestSingleSignOnRefusesTamperedAndReplayedCallbacks(t *testing.T) {
	e, m := ssoEnv(t, storetest.SQLite(t))
	_, tok, _ := e.staff.Add(context.Background(), staff.CLIActor("test"), staff.NewAccount{Username: "pia", Role: staff.Support})
	m.QueueUser(&mockoidc.MockUser{Subject: "pia-subject"})
	if code, _ := fetch(t, ssoBrowser(t), e.srv.URL+"/console/sso?enrol="+tok); code != 200 {
		t.Fatalf("enrol: %d", code)
	}
	// Walk the round trip by hand to reach the callback URL.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	step := func(u string) string {
		res, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header.Get("Location")
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "pia-subject"})
	authz := step(e.srv.URL + "/console/sso")
	callback := step(authz)
	if !strings.HasPrefix(callback, e.srv.URL+"/console/sso/callback?") {
		t.Fatalf("provider redirected to %q", callback)
	}
	cb, _ := url.Parse(callback)
	q := cb.Query()
	q.Set("state", "forged-"+q.Get("state"))
	forged := *cb
	forged.RawQuery = q.Encode()
	before := e.auditCount()
	if code, _ := fetch(t, c, forged.String()); code != http.StatusUnauthorized {
		t.Errorf("forged state: %d", code)
	}
	mustRefusal(t, e, before, "staff.signin", "state does not match")
	// The state was good for one callback: the real one now finds nothing.
	before = e.auditCount()
	if code, _ := fetch(t, c, callback); code != http.StatusUnauthorized {
		t.Errorf("callback after its state was used: %d", code)
	}
	mustRefusal(t, e, before, "staff.signin", "no sign-on in progress")
	// A callback without the browser's round-trip cookie is refused too.
	before = e.auditCount()
	if code, _ := fetch(t, &http.Client{}, callback); code != http.StatusUnauthorized {
		t.Errorf("callback from another browser: %d", code)
	}
	mustRefusal(t, e, before, "staff.signin", "no sign-on in progress")
}

func TestExpiredSubcontractorCannotSignInWithSingleSignOn(t *testing.T) {
	e, m := ssoEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	end := e.now.AddDate(0, 0, 1).Format(time.DateOnly)
	_, tok, err := e.staff.Add(ctx, staff.CLIActor("test"), staff.NewAccount{Username: "quinn", Role: staff.Support, Subcontractor: true,
		Company: "Support Partner Ltd", ContractRef: "SP-3", ContractEnd: end})
	if err != nil {
		t.Fatal(err)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "quinn-subject"})
	b := ssoBrowser(t)
	if code, _ := fetch(t, b, e.srv.URL+"/console/sso?enrol="+tok); code != 200 {
		t.Fatalf("enrol: %d", code)
	}
	if code, _ := fetch(t, b, e.srv.URL+"/console/tenants"); code != 200 {
		t.Fatalf("before the contract ends: %d", code)
	}
	acc, _ := e.staff.ByUsername(ctx, "quinn")
	e.now = acc.AccessEnds()
	// The open session ends at the next request…
	if code, body := fetch(t, b, e.srv.URL+"/console/tenants"); code != 200 || !strings.Contains(body, `id="login-form"`) {
		t.Errorf("after the contract ended: %d (want the sign-in page)", code)
	}
	// …and the provider's still-valid identity no longer signs in.
	m.QueueUser(&mockoidc.MockUser{Subject: "quinn-subject"})
	before := e.auditCount()
	if code, _ := fetch(t, ssoBrowser(t), e.srv.URL+"/console/sso"); code != http.StatusUnauthorized {
		t.Errorf("SSO after the contract ended: %d", code)
	}
	mustRefusal(t, e, before, "staff.signin", "contract ended "+end)
}

// The console reaches the provider only through the egress gate: a gate
// that was not told about the issuer refuses, and sign-on says so.
func TestSingleSignOnGoesThroughTheEgressGate(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	gate, err := egress.New(egress.Config{Region: "us-west-2", AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, storetest.SQLite(t), func(d *console.Deps) {
		d.SSO = &console.SSO{Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret, Client: gate.Client(egress.StaffSSO)}
	})
	if code, body := fetch(t, ssoBrowser(t), e.srv.URL+"/console/sso"); code != http.StatusServiceUnavailable || !strings.Contains(body, "cannot be reached") {
		t.Errorf("issuer outside the gate's allowlist: %d", code)
	}
}

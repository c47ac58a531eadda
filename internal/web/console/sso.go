package console

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"ferry/internal/apperr"
	"ferry/internal/staff"
)

// SSO is OpenID Connect single sign-on for staff (authorization code flow
// with PKCE, state and nonce). Every call to the issuer goes through the
// egress gate's client; discovery happens on first use, so an issuer that is
// down at start-up does not stop Ferry.
type SSO struct {
	Issuer, ClientID, ClientSecret string
	RedirectURL                    string // the console's /console/sso/callback
	Client                         *http.Client

	mu       sync.Mutex
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (s *SSO) ctx(ctx context.Context) context.Context { return oidc.ClientContext(ctx, s.Client) }

func (s *SSO) init(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conf != nil {
		return s.conf, s.verifier, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(s.ctx(ctx), s.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("single sign-on: discovery at %s: %w", s.Issuer, err)
	}
	s.conf = &oauth2.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: s.RedirectURL, Scopes: []string{oidc.ScopeOpenID}}
	// The key set must keep using the gate's client after discovery.
	s.verifier = p.VerifierContext(s.ctx(context.Background()), &oidc.Config{ClientID: s.ClientID})
	return s.conf, s.verifier, nil
}

// ssoRoundTrip is how long a sign-on round trip may take.
const ssoRoundTrip = 10 * time.Minute

// handleSSOStart sends the browser to the issuer. With ?enrol=TOKEN the
// round trip binds the enrolling account to the identity that comes back.
func (c *Console) handleSSOStart(w http.ResponseWriter, r *http.Request) {
	if c.d.SSO == nil {
		c.errorPage(w, r, nil, apperr.New(apperr.ENOTFOUND, "single sign-on is not configured (FERRY_CONSOLE_OIDC_ISSUER)"))
		return
	}
	conf, _, err := c.d.SSO.init(r.Context())
	if err != nil {
		c.errorPage(w, r, nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "the single sign-on provider cannot be reached"))
		return
	}
	st := staff.SSOState{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier()}
	if tok := r.URL.Query().Get("enrol"); tok != "" {
		if _, err := c.d.Staff.OpenEnrolment(r.Context(), tok); err != nil {
			c.errorPage(w, r, nil, err)
			return
		}
		st.EnrolTokenHash = staff.EnrolTokenHash(tok)
	}
	v, err := c.d.Staff.NewVisitor(r.Context())
	if err == nil {
		err = c.d.Staff.PutSSOState(r.Context(), v.Token, st)
	}
	if err != nil {
		c.errorPage(w, r, nil, err)
		return
	}
	// Lax, not Strict: the issuer's redirect back is a cross-site
	// navigation, and the round trip must find its state. It names a
	// visitor session that can never become a signed-in one.
	c.setCookie(w, c.ssoCookie(), v.Token, int(ssoRoundTrip.Seconds()), http.SameSiteLaxMode)
	http.Redirect(w, r, conf.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusSeeOther)
}

var continueTmpl = page("continue.html")

// handleSSOCallback checks state, exchanges the code (with the PKCE
// verifier), verifies the ID token (issuer, audience, expiry, signature,
// nonce) and signs in — or enrols — the account bound to issuer and
// subject. Every refusal is recorded.
func (c *Console) handleSSOCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fail := func(why string, err error) {
		c.refuse(ctx, staff.Actor{Name: "anonymous"}, "staff.signin", "", "single sign-on: "+why)
		if err == nil {
			err = apperr.New(apperr.EUNAUTHORIZED, "single sign-on failed: %s", why)
		}
		c.errorPage(w, r, nil, err)
	}
	if c.d.SSO == nil {
		c.errorPage(w, r, nil, apperr.New(apperr.ENOTFOUND, "single sign-on is not configured"))
		return
	}
	vtok := cookie(r, c.ssoCookie())
	c.clearCookie(w, c.ssoCookie())
	st, err := c.d.Staff.TakeSSOState(ctx, vtok)
	if err != nil {
		fail("no sign-on in progress in this browser (or it was used already)", nil)
		return
	}
	defer c.d.Staff.SignOut(ctx, vtok)
	q := r.URL.Query()
	if q.Get("error") != "" {
		fail("the provider answered "+truncate(q.Get("error"), 64), nil)
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		fail("state does not match", nil)
		return
	}
	conf, verifier, err := c.d.SSO.init(ctx)
	if err != nil {
		fail("provider unreachable", apperr.Wrap(err, apperr.EUNAVAILABLE, "the single sign-on provider cannot be reached"))
		return
	}
	tok, err := conf.Exchange(c.d.SSO.ctx(ctx), q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		fail("code exchange refused", nil)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(c.d.SSO.ctx(ctx), raw)
	if err != nil {
		fail("ID token does not verify", nil)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		fail("nonce does not match", nil)
		return
	}
	if st.EnrolTokenHash != "" {
		if _, err := c.d.Staff.EnrolWithSSO(ctx, st.EnrolTokenHash, idt.Issuer, idt.Subject); err != nil {
			c.errorPage(w, r, nil, err)
			return
		}
	}
	ss, err := c.d.Staff.SignInSSO(ctx, idt.Issuer, idt.Subject)
	if err != nil {
		c.errorPage(w, r, nil, err)
		return
	}
	c.setCookie(w, c.sessionCookie(), ss.Token, 0, http.SameSiteStrictMode)
	// A page that moves on by itself: a redirect would still belong to the
	// issuer's cross-site navigation, which does not carry the Strict cookie.
	c.render(w, continueTmpl, http.StatusOK, view{Title: "Signed in", Now: c.d.Staff.Now()})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func randomString() string { return oauth2.GenerateVerifier() }

package jirasim

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestForgeFITsVerifyWithAnIndependentLibrary: every invocation the sim
// makes (install event, scheduled trigger, UI call) carries a FIT that
// golang-jwt verifies against the sim's JWKS, with the documented claims
// and headers, and the tokens each kind of invocation should carry.
func TestForgeFITsVerifyWithAnIndependentLibrary(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 50, Seed: 11})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	if err := s.FireForgeTrigger(context.Background(), in.ID); err != nil {
		t.Fatal(err)
	}
	user := s.Users()[1]
	resp, err := s.InvokeForge(context.Background(), in.ID, "ferry-admin", user.AccountID, ForgeRequest{Method: "POST", Path: "/forge/ui/sources", Body: json.RawMessage(`{"name":"x"}`)})
	if err != nil || resp.Status != 200 {
		t.Fatalf("invoke: %+v %v", resp, err)
	}

	jtis := map[string]bool{}
	for _, tc := range []struct {
		path, moduleType, moduleKey string
		ui                          bool
		minSystemTTL                time.Duration
	}{
		{"/forge/events", "core:endpoint", "ferry-events", false, 55 * time.Minute},
		{"/forge/trigger", "core:endpoint", "ferry-trigger", false, 2 * time.Hour},
		{"/forge/ui/sources", "jira:adminPage", "ferry-admin", true, 55 * time.Minute},
	} {
		c := rm.last(tc.path)
		if c.Err != "" {
			t.Fatalf("%s: the FIT does not verify: %s", tc.path, c.Err)
		}
		cl := map[string]any(c.Claims)
		if c.Method != http.MethodPost {
			t.Errorf("%s: method %s", tc.path, c.Method)
		}
		iat, _ := c.Claims.GetIssuedAt()
		exp, _ := c.Claims.GetExpirationTime()
		nbf, _ := c.Claims.GetNotBefore()
		if nbf == nil || exp.Sub(iat.Time) != 25*time.Second || !nbf.Equal(iat.Time) {
			t.Errorf("%s: iat %v nbf %v exp %v, want a 25 s token valid from iat", tc.path, iat, nbf, exp)
		}
		jti := cl["jti"].(string)
		if jtis[jti] {
			t.Errorf("%s: jti %s reused", tc.path, jti)
		}
		jtis[jti] = true
		for _, want := range []struct {
			path []string
			v    any
		}{
			{[]string{"app", "id"}, rm.appID},
			{[]string{"app", "installationId"}, in.ID},
			{[]string{"app", "apiBaseUrl"}, s.BaseURL() + "/ex/jira/" + s.CloudID()},
			{[]string{"app", "appVersion"}, "2.0.0"},
			{[]string{"app", "environment", "type"}, "PRODUCTION"},
			{[]string{"app", "environment", "id"}, in.EnvironmentID},
			{[]string{"app", "module", "type"}, tc.moduleType},
			{[]string{"app", "module", "key"}, tc.moduleKey},
			{[]string{"app", "installation", "id"}, in.ID},
			{[]string{"app", "license", "isActive"}, true},
		} {
			if got := claim(cl, want.path...); got != want.v {
				t.Errorf("%s: %s = %v, want %v", tc.path, strings.Join(want.path, "."), got, want.v)
			}
		}
		if ctxs, _ := claim(cl, "app", "installation", "contexts").([]any); len(ctxs) != 1 || ctxs[0] != in.WorkspaceARI {
			t.Errorf("%s: installation.contexts %v", tc.path, ctxs)
		}
		if !strings.HasPrefix(in.ID, "ari:cloud:ecosystem::installation/") || !strings.HasPrefix(in.AppID, "ari:cloud:ecosystem::app/") {
			t.Errorf("ids are not ARIs: %s %s", in.ID, in.AppID)
		}
		sys := c.Header.Get("x-forge-oauth-system")
		// Measured from the invocation's own iat: the guarantee holds at
		// delivery, and the test reads the token a moment later.
		if sys == "" || iat == nil || tokenExp(t, sys).Sub(iat.Time) < tc.minSystemTTL {
			t.Errorf("%s: system token missing or living less than %s", tc.path, tc.minSystemTTL)
		}
		usr := c.Header.Get("x-forge-oauth-user")
		if tc.ui {
			if cl["principal"] != user.AccountID || usr == "" {
				t.Errorf("UI call: principal %v, user token %q", cl["principal"], usr)
			}
			for k, v := range map[string]any{"cloudId": s.CloudID(), "siteUrl": s.BaseURL(), "moduleKey": "ferry-admin"} {
				if got := claim(cl, "context", k); got != v {
					t.Errorf("UI call: context.%s = %v, want %v", k, got, v)
				}
			}
			if claim(cl, "context", "extension", "type") != "jira:adminPage" {
				t.Errorf("UI call: context.extension %v", claim(cl, "context", "extension"))
			}
			if c.Body["name"] != "x" || c.Header.Get("Content-Type") != "application/json" {
				t.Errorf("UI call body %v", c.Body)
			}
		} else if usr != "" || cl["principal"] != nil || cl["context"] != nil {
			t.Errorf("%s: a backend invocation carries a user token, principal or context", tc.path)
		}
	}
}

// TestForgeFITVariantsFailVerification: each broken variant is refused by
// an independent verifier pinned to the app's id, for the reason it
// stands for; the valid one passes. Cases come from FITVariants(), so a new
// variant without an expectation fails here.
func TestForgeFITVariantsFailVerification(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 12})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	want := map[FITVariant]string{
		FITValid:               "",
		FITWrongAudience:       "aud",
		FITOtherApp:            "aud",
		FITExpired:             "expired",
		FITNotYetValid:         "", // iat or nbf in the future: either refusal is right
		FITUnknownKeyID:        "not in the JWKS",
		FITAlgNone:             "signing method",
		FITAlgHS256:            "signing method",
		FITWrongIssuer:         "iss",
		FITTampered:            "signature",
		FITMissingTraceHeaders: "trace headers",
		FITMissingKeyID:        "no kid",
	}
	for _, v := range FITVariants() {
		t.Run(v.String(), func(t *testing.T) {
			reason, ok := want[v]
			if !ok {
				t.Fatalf("no expectation for variant %s", v)
			}
			req, err := s.NewForgeRequest(context.Background(), in.ID, ForgeCall{Kind: "scheduledTrigger", Endpoint: "ferry-trigger", Module: "ferry-token-refresh", Body: map[string]any{}, Variant: v})
			if err != nil {
				t.Fatal(err)
			}
			_, _, verr := verifyFIT(context.Background(), rm.jwksURL, rm.appID, req.Header)
			switch {
			case v == FITValid && verr != nil:
				t.Fatalf("valid FIT refused: %v", verr)
			case v != FITValid && verr == nil:
				t.Fatalf("variant %s verified", v)
			case v == FITNotYetValid && !strings.Contains(verr.Error(), "not valid yet") && !strings.Contains(verr.Error(), "used before issued"):
				t.Fatalf("not-yet-valid refused for another reason: %v", verr)
			case reason != "" && !strings.Contains(verr.Error(), reason):
				t.Fatalf("refused for %q, want a reason about %q", verr, reason)
			}
			if v == FITOtherApp {
				// Signed by Forge for the other app: valid for that app.
				if _, _, err := verifyFIT(context.Background(), rm.jwksURL, s.OtherForgeAppID(), req.Header); err != nil {
					t.Fatalf("other-app FIT does not verify for the other app: %v", err)
				}
				tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
				claims := jwt.MapClaims{}
				jwt.NewParser().ParseUnverified(tok, claims)
				if claim(claims, "app", "id") != s.OtherForgeAppID() {
					t.Fatal("other-app FIT names this app in app.id")
				}
			}
		})
	}
	// A replayed jti: the same request twice; the careful remote refuses the second.
	req, err := s.NewForgeRequest(context.Background(), in.ID, ForgeCall{Kind: "event", Endpoint: "ferry-events", Module: ForgeUpgradedEvent, Body: map[string]any{"id": in.ID}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r := req.Clone(context.Background())
		r.Body, _ = req.GetBody()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := []int{200, 401}[i]; resp.StatusCode != want {
			t.Fatalf("send %d: HTTP %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

// TestForgeJWKSRotation: a rotation adds a key that signs from then on and
// keeps the old one published; retiring drops it, and tokens it signed stop
// verifying.
func TestForgeJWKSRotation(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 13})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	mint := func() (*http.Request, string) {
		req, err := s.NewForgeRequest(context.Background(), in.ID, ForgeCall{Kind: "scheduledTrigger", Endpoint: "ferry-trigger", Module: "ferry-token-refresh", Body: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		_, kid, err := verifyFIT(context.Background(), rm.jwksURL, rm.appID, req.Header)
		if err != nil {
			t.Fatalf("fresh FIT refused: %v", err)
		}
		return req, kid
	}
	old, oldKid := mint()
	kids := s.ForgeKeyIDs()
	if len(kids) != 1 || kids[0] != oldKid {
		t.Fatalf("JWKS %v, signer %s", kids, oldKid)
	}
	newKid := s.RotateForgeKeys()
	if _, kid := mint(); kid != newKid || kid == oldKid {
		t.Fatalf("after rotation the FIT is signed by %s, want %s", kid, newKid)
	}
	if got := s.ForgeKeyIDs(); !slices.Equal(got, []string{oldKid, newKid}) {
		t.Fatalf("JWKS after rotation %v", got)
	}
	if _, _, err := verifyFIT(context.Background(), rm.jwksURL, rm.appID, old.Header); err != nil {
		t.Fatalf("a FIT signed before the rotation must still verify: %v", err)
	}
	s.RetireForgeKeys()
	if _, _, err := verifyFIT(context.Background(), rm.jwksURL, rm.appID, old.Header); err == nil || !strings.Contains(err.Error(), "not in the JWKS") {
		t.Fatalf("a FIT signed by a retired key: %v", err)
	}
	if _, kid := mint(); kid != newKid {
		t.Fatal("the current key must survive retirement")
	}
}

// TestForgeUICallsCannotSetPlatformHeaders: invokeRemote headers reach the
// remote, but not over the FIT, the tokens or the trace headers.
func TestForgeUICallsCannotSetPlatformHeaders(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 14})
	rm := newForgeRemote(t, s)
	app := testForgeApp(rm)
	ep := app.Endpoints["ferry-ui"]
	ep.UserToken = false // so nothing of the platform's would overwrite a smuggled user token
	app.Endpoints["ferry-ui"] = ep
	in := installForge(t, s, app)
	_, err := s.InvokeForge(context.Background(), in.ID, "ferry-admin", s.Users()[0].AccountID, ForgeRequest{Method: "GET", Path: "/forge/ui/h",
		Headers: map[string]string{"Authorization": "Bearer forged", "X-Forge-Oauth-System": "forged", "x-forge-oauth-user": "forged", "x-b3-traceid": "forged", "x-custom": "kept"}})
	if err != nil {
		t.Fatal(err)
	}
	c := rm.last("/forge/ui/h")
	if c.Err != "" || c.Header.Get("x-custom") != "kept" {
		t.Fatalf("call: %+v", c)
	}
	for _, h := range []string{"Authorization", "x-forge-oauth-system", "x-b3-traceid"} {
		if vs := c.Header.Values(h); len(vs) != 1 || strings.Contains(vs[0], "forged") {
			t.Errorf("%s: %v", h, vs)
		}
	}
	if vs := c.Header.Values("x-forge-oauth-user"); len(vs) != 0 {
		t.Errorf("a user token the endpoint does not ask for reached the remote: %v", vs)
	}
}

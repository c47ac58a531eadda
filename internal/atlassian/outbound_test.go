package atlassian_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/atlassian"
	"ferry/internal/config"
	"ferry/internal/store/storetest"
)

func TestOutboundCredentialsGoOnlyToTheTenantsSite(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	ctx := context.Background()
	inst := f.install(victim, newSecret, siteURL)
	for _, target := range []string{"https://evil.example.com/rest/api/3/myself", "http://victim.atlassian.net/rest/api/3/myself",
		"https://victim.atlassian.net.evil.com/rest", "https://other.atlassian.net/rest/api/3/myself"} {
		for name, a := range map[string]atlassian.Authorizer{"app": f.c.AppAuth(inst), "user": f.c.UserAuth(inst, userAcct)} {
			req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
			if err := a.Authorize(ctx, req); !errors.Is(err, atlassian.ErrWrongSite) || req.Header.Get("Authorization") != "" {
				t.Errorf("%s auth for %s: %v, header %q", name, target, err, req.Header.Get("Authorization"))
			}
		}
	}
	f.tenants.Disable(ctx, inst.TenantID)
	inst, _ = f.tenants.ByID(ctx, inst.TenantID)
	req, _ := http.NewRequestWithContext(ctx, "GET", siteURL+"/rest/api/3/myself", nil)
	if err := f.c.AppAuth(inst).Authorize(ctx, req); !errors.Is(err, atlassian.ErrTenantInactive) {
		t.Fatalf("disabled tenant: %v", err)
	}
}

func TestUserTokensComeFromTheJWTBearerGrantAndAreCachedUntilShortlyBeforeExpiry(t *testing.T) {
	var exchanges atomic.Int32
	var bad atomic.Value
	oauth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		exchanges.Add(1)
		parts := strings.Split(r.PostForm.Get("assertion"), ".")
		var c map[string]any
		if len(parts) == 3 {
			b, _ := b64.DecodeString(parts[1])
			json.Unmarshal(b, &c)
		}
		switch {
		case r.URL.Path != "/oauth2/token", r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer",
			r.PostForm.Get("scope") != "READ ACT_AS_USER", c["iss"] != "urn:atlassian:connect:clientid:oauth-"+victim,
			c["sub"] != "urn:atlassian:connect:useraccountid:"+userAcct, c["tnt"] != siteURL,
			c["aud"] != atlassian.OAuthAudience, c["exp"].(float64)-c["iat"].(float64) != 60:
			bad.Store(r.PostForm.Encode())
			http.Error(w, `{"error":"invalid_grant"}`, 400)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + string(rune('A'+exchanges.Load())), "expires_in": 900})
	}))
	defer oauth.Close()
	f := newFixture(t, storetest.SQLite(t), func(c *config.Config) { c.OAuthURL = oauth.URL })
	ctx := context.Background()
	inst := f.install(victim, newSecret, siteURL)
	auth := func() string {
		req, _ := http.NewRequestWithContext(ctx, "GET", siteURL+"/rest/api/3/myself", nil)
		if err := f.c.UserAuth(inst, userAcct).Authorize(ctx, req); err != nil {
			t.Fatal(err)
		}
		return req.Header.Get("Authorization")
	}
	first := auth()
	if first != "Bearer at-B" || auth() != first || exchanges.Load() != 1 {
		t.Fatalf("first %q, exchanges %d (bad request: %v)", first, exchanges.Load(), bad.Load())
	}
	f.advance(14 * time.Minute) // 60 s before expiry: renew
	if got := auth(); got == first || exchanges.Load() != 2 {
		t.Fatalf("token not renewed before expiry: %q, exchanges %d", got, exchanges.Load())
	}
}

func TestCheckSiteURL(t *testing.T) {
	allowed := config.Default().ConnectAllowedHosts
	for _, c := range []struct {
		url      string
		loopback bool
		ok       bool
	}{
		{"https://acme.atlassian.net", false, true},
		{"https://acme.atlassian.net/", false, true},
		{"https://ACME.jira.com", false, true},
		{"https://acme.jira-dev.com:443", false, true},
		{"https://atlassian.net", false, false},
		{"https://acme.atlassian.net:8443", false, false},
		{"http://acme.atlassian.net", false, false},
		{"https://user:pw@acme.atlassian.net", false, false},
		{"https://acme.atlassian.net?x=1", false, false},
		{"https://acme.atlassian.net.", false, false},
		{"https://169.254.169.254", true, false},
		{"https://[::1]", false, false},
		{"https://0x7f.1", false, false},
		{"https://localhost", false, false},
		{"http://127.0.0.1:8080", false, false},
		{"http://127.0.0.1:8080", true, true},
		{"http://localhost:8080", true, true},
		{"http://10.0.0.1", true, false},
		{"https://evil.com", true, false},
		{"ftp://acme.atlassian.net", false, false},
	} {
		err := atlassian.CheckSiteURL(c.url, allowed, c.loopback)
		if (err == nil) != c.ok {
			t.Errorf("CheckSiteURL(%q, loopback=%v) = %v, want ok=%v", c.url, c.loopback, err, c.ok)
		}
	}
}

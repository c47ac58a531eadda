package atlassian_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"ferry/internal/atlassian"
	"ferry/internal/reqinfo"
	"ferry/internal/store/storetest"
)

// pageURL is how Jira loads a page: standard parameters and a jwt whose qsh
// covers them (lic included, so it cannot be edited).
func (f *fixture) pageURL(path, clientKey string, secret []byte, edit func(h, c map[string]any)) string {
	q := url.Values{"lic": {"active"}, "xdm_e": {siteURL}, "cp": {""}, "tz": {"Europe/Berlin"}}
	target := path + "?" + q.Encode()
	tok := f.tenantToken(target, clientKey, secret, edit)
	return target + "&jwt=" + tok
}

func TestRequestAuthentication(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	ctx := context.Background()
	inst := f.install(victim, newSecret, siteURL)
	other := f.install("other-site", oldSecret, "https://other.atlassian.net")
	ctxTok, err := f.c.MintContextToken(ctx, inst, userAcct)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name   string
		target string
		auth   string
		status int
	}
	cases := []tc{
		{"page with Jira's signed URL", f.pageURL("/app/data-sources", victim, []byte(newSecret), nil), "", 200},
		{"page with header token", "/app/admin", f.tenantToken("/app/admin", victim, []byte(newSecret), nil), 200},
		{"page with a context token", "/app/admin", ctxTok, 401},
		{"page with lic edited after signing", func() string {
			u := f.pageURL("/app/data-sources", victim, []byte(newSecret), nil)
			return "/app/data-sources?lic=active&lic=x" + u[len("/app/data-sources?"+"cp=&lic=active"):]
		}(), "", 401},
		{"api with a context token", "/app-api/sources", ctxTok, 200},
		{"api with a request-bound token", "/app-api/sources?x=1", f.tenantToken("/app-api/sources?x=1", victim, []byte(newSecret), nil), 200},
		{"api with no token", "/app-api/sources", "", 401},
		{"api with another tenant's secret under this iss", "/app-api/sources", f.tenantToken("/app-api/sources", victim, []byte(oldSecret), nil), 401},
		{"api with unknown iss", "/app-api/sources", f.tenantToken("/app-api/sources", "nobody", []byte(newSecret), nil), 401},
		{"api without sub", "/app-api/sources", f.tenantToken("/app-api/sources", victim, []byte(newSecret), func(h, c map[string]any) { delete(c, "sub") }), 401},
		{"api with alg none", "/app-api/sources", encodeJWT(map[string]any{"alg": "none"}, map[string]any{"iss": victim, "sub": userAcct, "exp": time.Now().Unix() + 100, "qsh": "context-qsh"}, nil), 401},
		{"api with RS256", "/app-api/sources", f.installToken("/app-api/sources", victim, nil), 401},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.target, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", "JWT "+c.auth)
		}
		rctx, info := reqinfo.With(r.Context())
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r.WithContext(rctx))
		if w.Code != c.status {
			t.Errorf("%s: HTTP %d, want %d: %s", c.name, w.Code, c.status, w.Body)
			continue
		}
		if c.status == 401 && w.Header().Get("WWW-Authenticate") != `JWT realm="Ferry"` {
			t.Errorf("%s: 401 without a JWT challenge", c.name)
		}
		if c.status != 200 {
			continue
		}
		var got map[string]string
		json.Unmarshal(w.Body.Bytes(), &got)
		tid, pseud := info.Identity()
		if got["tenant"] != inst.TenantID || tid != inst.TenantID || pseud == "" || pseud == userAcct || got["user"] != pseud || got["account"] != userAcct {
			t.Errorf("%s: principal %v, reqinfo (%s, %s)", c.name, got, tid, pseud)
		}
		if c.name == "page with Jira's signed URL" && got["lic"] != "active" {
			t.Errorf("page license: %q", got["lic"])
		}
	}
	_ = other

	// A context token lives 15 minutes.
	f.advance(atlassian.ContextTokenTTL + time.Minute)
	w := f.do("GET", "/app-api/sources", ctxTok, nil)
	if w.Code != 401 {
		t.Fatalf("expired context token: %d", w.Code)
	}
}

func TestDisabledAndUninstalledTenantsAreForbidden(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	ctx := context.Background()
	inst := f.install(victim, newSecret, siteURL)
	tok, _ := f.c.MintContextToken(ctx, inst, userAcct)
	f.tenants.Disable(ctx, inst.TenantID)
	if w := f.do("GET", "/app-api/x", tok, nil); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "disabled") {
		t.Fatalf("disabled: %d %s", w.Code, w.Body)
	}
	f.tenants.Uninstall(ctx, inst.TenantID)
	if w := f.do("GET", "/app-api/x", tok, nil); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "uninstalled") {
		t.Fatalf("pending deletion: %d %s", w.Code, w.Body)
	}
}

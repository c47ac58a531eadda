package atlassian_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ferry/internal/atlassian"
	"ferry/internal/store/storetest"
)

// atlassianJWT runs testdata/jwt.js under Node with the interop packages.
// Without node or interop/node_modules the test skips, unless
// FERRY_REQUIRE_INTEROP=1 (CI), which makes it fail.
func atlassianJWT(t *testing.T, in any, out any) {
	t.Helper()
	modules, _ := filepath.Abs("../../interop/node_modules")
	node, err := exec.LookPath("node")
	missing := ""
	if err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(modules, "atlassian-jwt")); err != nil {
		missing = "interop/node_modules/atlassian-jwt is missing (cd interop && npm ci)"
	}
	if missing != "" {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal("interop test cannot run: " + missing)
		}
		t.Skip("interop test skipped: " + missing)
	}
	b, _ := json.Marshal(in)
	cmd := exec.Command(node, "testdata/jwt.js")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("node output %q: %v", res, err)
	}
}

type qshCase struct {
	Method  string `json:"method"`
	URL     string `json:"url"`
	BaseURL string `json:"baseUrl"`
}

func TestQSHMatchesAtlassianJWT(t *testing.T) {
	const site = "https://tricky.atlassian.net"
	cases := []qshCase{
		{"GET", site, site},
		{"GET", site + "/", site},
		{"get", site + "/rest/api/3/search/jql?jql=project%20%3D%20ABC&maxResults=50", site},
		{"GET", site + "/rest/api/3/field?b=2&a=1&b=1&a=3", site},                         // repeated keys
		{"GET", site + "/rest/api/3/user?query=a+b&x=%2B", site},                          // + is a space, %2B a plus
		{"GET", site + "/rest/api/3/user?name=J%C3%BCrgen%20%E2%9C%93&k=%E6%97%A5", site}, // UTF-8
		{"POST", site + "/rest/a&b/c?x=y", site},                                          // & in path
		{"PUT", site + "/rest/api/3/issue/ABC-1/", site},                                  // trailing slash
		{"GET", site + "/rest/api/3/x?empty=&flag&z=", site},                              // empty values
		{"GET", site + "/rest/api/3/x?jwt=abc.def.ghi&a=1", site},                         // jwt param
		{"GET", site + "/rest/api/3/x?a=%2A%21%27%28%29~-._", site},                       // reserved-ish characters
		{"GET", site + "/wiki/rest/api/space?limit=1", site + "/wiki"},                    // base path
		{"GET", site + "/rest/api/3/x?z=%zz&u=%FF&k%20ey=v", site},                        // malformed escapes
		{"DELETE", site + "/rest/api/3/x?a=b=c&&&a=", site},                               // '=' in a value, stray '&'
		{"GET", "http://127.0.0.1:8080/app/data-sources?xdm_e=https%3A%2F%2Fx.atlassian.net&cp=&lic=active&tz=Europe%2FBerlin", "http://127.0.0.1:8080"},
	}
	var want []struct{ Canonical, QSH string }
	atlassianJWT(t, map[string]any{"op": "qsh", "cases": cases}, &want)
	for i, c := range cases {
		u, _ := url.Parse(c.URL)
		b, _ := url.Parse(c.BaseURL)
		got := atlassian.CanonicalRequest(c.Method, u.EscapedPath(), b.EscapedPath(), u.RawQuery)
		if got != want[i].Canonical || atlassian.QSH(c.Method, u.EscapedPath(), b.EscapedPath(), u.RawQuery) != want[i].QSH {
			t.Errorf("%s %s:\n ferry          %q\n atlassian-jwt  %q", c.Method, c.URL, got, want[i].Canonical)
		}
	}
}

func TestAtlassianJWTTokensAreAccepted(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	k, _ := testRSA(t)
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	install := f.installClaims("/lifecycle/installed", victim)
	pagePath := "/app/data-sources?lic=active&cp=&xdm_e=" + url.QueryEscape(siteURL)
	now := f.clock().Unix()
	var toks struct{ HS, RS string }
	atlassianJWT(t, map[string]any{"op": "sign",
		"rs": map[string]any{"claims": install, "key": string(priv), "kid": testKid},
		"hs": map[string]any{"secret": newSecret, "claims": map[string]any{"iss": victim, "sub": userAcct, "iat": now, "exp": now + 180,
			"qsh": qshFor("GET", pagePath, appBase)}},
	}, &toks)
	if w := f.do("POST", "/lifecycle/installed", toks.RS, payload("installed", victim, newSecret, siteURL)); w.Code != http.StatusNoContent {
		t.Fatalf("installed signed by atlassian-jwt: %d %s", w.Code, w.Body)
	}
	if w := f.do("GET", pagePath, toks.HS, nil); w.Code != http.StatusOK {
		t.Fatalf("page token signed by atlassian-jwt: %d %s", w.Code, w.Body)
	}
}

func TestFerryTokensVerifyWithAtlassianJWT(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	inst := f.install(victim, newSecret, siteURL)
	ctx := context.Background()
	target := siteURL + "/rest/api/3/search/jql?jql=project%20%3D%20%22A%20B%22&fields=summary&fields=key&nextPageToken=a%2Bb"
	req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
	if err := f.c.AppAuth(inst).Authorize(ctx, req); err != nil {
		t.Fatal(err)
	}
	appTok := strings.TrimPrefix(req.Header.Get("Authorization"), "JWT ")
	ctxTok, err := f.c.MintContextToken(ctx, inst, userAcct)
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Claims map[string]any
		QSH    string
	}
	atlassianJWT(t, map[string]any{"op": "verify", "tokens": []map[string]any{
		{"token": appTok, "secret": newSecret, "method": "GET", "url": target, "baseUrl": siteURL},
		{"token": ctxTok, "secret": newSecret},
	}}, &got)
	app := got[0]
	if app.Claims["iss"] != addonKey || app.Claims["qsh"] != app.QSH {
		t.Fatalf("app token as atlassian-jwt sees it: %v (qsh it computes: %s)", app.Claims, app.QSH)
	}
	if exp, iat := app.Claims["exp"].(float64), app.Claims["iat"].(float64); exp-iat != 180 {
		t.Fatalf("app token lifetime %v s, want 180", exp-iat)
	}
	c := got[1].Claims
	if c["iss"] != victim || c["sub"] != userAcct || c["qsh"] != "context-qsh" || c["exp"].(float64)-c["iat"].(float64) != 900 {
		t.Fatalf("context token as atlassian-jwt sees it: %v", c)
	}
}

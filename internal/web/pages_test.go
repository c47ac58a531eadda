package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"ferry/internal/atlassian"
	"ferry/internal/config"
	"ferry/internal/jirasim"
	"ferry/internal/keys"
	"ferry/internal/logging"
	"ferry/internal/server"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
	"ferry/internal/web"
)

// site is Ferry's pages served over the real server handler, installed into
// a simulated Jira through the signed lifecycle.
type site struct {
	sim      *jirasim.Sim
	appURL   string
	addonKey string
	connect  *atlassian.Connect
	users    []jirasim.User
}

func newSite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	sim := jirasim.New(jirasim.Options{Issues: 3, Projects: 1, Users: 3, AllowHTTPApp: true, Seed: 11})
	simURL, err := sim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()

	db := storetest.SQLite(t)
	kek, err := keys.OpenLocalKEK(t.TempDir() + "/kek.json")
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(db, kek)
	tenants := tenant.NewStore(db, ring)
	cfg := config.Default()
	cfg.BaseURL, cfg.AllowLoopback = appURL, true
	cfg.ConnectAllowedHosts = []string{"*.atlassian.net", "127.0.0.1:*"}
	cfg.InstallKeysURL, cfg.OAuthURL = simURL+"/connect-install-keys", simURL
	log := logging.New(io.Discard, logging.Options{Format: "json", Level: "error"})
	hc := &http.Client{Timeout: 10 * time.Second}
	c, err := atlassian.New(atlassian.Options{Config: cfg, Tenants: tenants, Keys: ring, Log: log,
		InstallKeysClient: hc, JiraClient: hc, OAuthClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// A stand-in API route: the real /app-api/ lives in internal/export.
	mux.Handle("GET /app-api/whoami", c.RequireAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := atlassian.PrincipalFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]string{"accountId": p.AccountID, "clientKey": p.Installation.ClientKey})
	})))
	mux.Handle("/", server.NewServer(server.Deps{Config: cfg, Log: log, DB: db, Keys: ring, Connect: c,
		Pages: &web.Pages{Connect: c, Config: cfg, Log: log}}))
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	in, err := sim.Install(ctx, appURL, jirasim.InstallValid)
	if err != nil {
		t.Fatal(err)
	}
	return &site{sim: sim, appURL: appURL, addonKey: in.AddonKey, connect: c, users: sim.Users()}
}

type page struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url, jwt string) page {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if jwt != "" {
		req.Header.Set("Authorization", "JWT "+jwt)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(b)}
}

// open loads a page module as Jira does: a signed iframe URL.
func (s *site) open(t *testing.T, module, accountID string) page {
	t.Helper()
	u, err := s.sim.PageURL(s.addonKey, module, accountID)
	if err != nil {
		t.Fatal(err)
	}
	return get(t, u, "")
}

var metaToken = regexp.MustCompile(`<meta name="ferry-token" content="([^"]+)">`)

func TestPagesRequireAConnectPageJWT(t *testing.T) {
	s := newSite(t)
	for _, path := range []string{atlassian.PageDataSources, atlassian.PageAdmin} {
		if p := get(t, s.appURL+path, ""); p.status != 401 {
			t.Errorf("%s without a JWT: %d, want 401", path, p.status)
		}
		if p := get(t, s.appURL+path+"?jwt=not.a.jwt", ""); p.status != 401 {
			t.Errorf("%s with a garbage JWT: %d, want 401", path, p.status)
		}
	}
	// A page URL Jira signed for one page does not open another (qsh).
	u, _ := s.sim.PageURL(s.addonKey, "data-sources", s.users[0].AccountID)
	if p := get(t, strings.Replace(u, atlassian.PageDataSources, atlassian.PageAdmin, 1), ""); p.status != 401 {
		t.Errorf("data-sources JWT on the admin page: %d, want 401", p.status)
	}
	// The context token a page embeds opens the API, never a page.
	tok := metaToken.FindStringSubmatch(s.open(t, "data-sources", s.users[0].AccountID).body)
	if tok == nil {
		t.Fatal("no ferry-token")
	}
	if p := get(t, s.appURL+atlassian.PageDataSources, tok[1]); p.status != 401 {
		t.Errorf("context token on a page: %d, want 401", p.status)
	}
}

func TestPagesSetTheirCSPAndEmbedATokenTheAPIAccepts(t *testing.T) {
	s := newSite(t)
	user := s.users[1]
	for _, module := range []string{"data-sources", "admin"} {
		p := s.open(t, module, user.AccountID)
		if p.status != 200 {
			t.Fatalf("%s: %d %s", module, p.status, p.body)
		}
		want := "default-src 'none'; script-src 'self' https://connect-cdn.atl-paas.net; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
			"form-action 'self'; base-uri 'none'; frame-ancestors https://*.atlassian.net http://127.0.0.1:*"
		if got := p.header.Values("Content-Security-Policy"); len(got) != 1 || got[0] != want {
			t.Errorf("%s CSP = %q\nwant %q", module, got, want)
		}
		if cc := p.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s Cache-Control = %q, want no-store (the page holds a token)", module, cc)
		}
		if c := p.header.Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("%s sets cookies: %q", module, c)
		}
		m := metaToken.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("%s: no ferry-token meta", module)
		}
		api := get(t, s.appURL+"/app-api/whoami", m[1])
		if api.status != 200 || !strings.Contains(api.body, user.AccountID) {
			t.Errorf("%s: RequireAPI with the embedded token: %d %s", module, api.status, api.body)
		}
		if strings.Contains(p.body, atlassian.UnlicensedMessage) {
			t.Errorf("%s: licensed site shows the unlicensed banner", module)
		}
	}
}

// connectJSURL is Atlassian's Connect script, the default FERRY_CONNECT_JS_URL.
const connectJSURL = "https://connect-cdn.atl-paas.net/all.js"

var (
	scriptTag   = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	styleTag    = regexp.MustCompile(`(?i)<style\b`)
	inlineAttrs = regexp.MustCompile(`(?i)\s(style|on[a-z]+)\s*=`)
	linkTag     = regexp.MustCompile(`(?i)<(?:link|script|img)\b[^>]*\b(?:href|src)="([^"]*)"`)
	emailLike   = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
)

func TestPagesHaveNoInlineCodeNoThirdPartyAssetsAndNoEmail(t *testing.T) {
	s := newSite(t)
	for _, module := range []string{"data-sources", "admin"} {
		body := s.open(t, module, s.users[0].AccountID).body
		connectJS := 0
		for _, m := range scriptTag.FindAllStringSubmatch(body, -1) {
			// Ferry's own script, and Atlassian's all.js that Jira requires
			// of every app page; nothing inline, nothing else.
			if strings.Contains(m[1], `src="`+connectJSURL+`"`) && strings.TrimSpace(m[2]) == "" {
				connectJS++
				continue
			}
			if !strings.Contains(m[1], `src="/static/`) || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: inline script %q", module, m[0])
			}
		}
		if connectJS != 1 {
			t.Errorf("%s loads Atlassian's all.js %d times, want once", module, connectJS)
		}
		if styleTag.MatchString(body) || inlineAttrs.MatchString(body) {
			t.Errorf("%s: inline style or event handler: %q", module, inlineAttrs.FindString(body))
		}
		for _, m := range linkTag.FindAllStringSubmatch(body, -1) {
			if m[1] == connectJSURL {
				continue
			}
			if !strings.HasPrefix(m[1], "/static/") {
				t.Errorf("%s: asset from elsewhere: %q", module, m[1])
			}
			if a := get(t, s.appURL+m[1], ""); a.status != 200 || !strings.Contains(a.header.Get("Cache-Control"), "immutable") {
				t.Errorf("%s: %s: %d, Cache-Control %q", module, m[1], a.status, a.header.Get("Cache-Control"))
			}
		}
		if e := emailLike.FindString(body); e != "" {
			t.Errorf("%s shows an email address: %q", module, e)
		}
		for _, u := range s.users {
			if strings.Contains(body, u.Email) || strings.Contains(body, u.AccountID) {
				t.Errorf("%s names a user in its HTML", module)
			}
		}
	}
	// The script itself reaches only Ferry and stores nothing in the browser.
	js := get(t, s.appURL+"/static/app.js", "")
	if js.status != 200 || !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("app.js: %d %q", js.status, js.header.Get("Content-Type"))
	}
	if cc := js.header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
		t.Errorf("app.js without ?v= cached as immutable: %q", cc)
	}
	for _, bad := range []string{"http://", "https://", "document.cookie", "localStorage", "sessionStorage", "innerHTML", "eval("} {
		if strings.Contains(js.body, bad) {
			t.Errorf("app.js contains %q", bad)
		}
	}
	if p := get(t, s.appURL+"/static/nope.js", ""); p.status != 404 {
		t.Errorf("unknown static file: %d", p.status)
	}
}

func TestUnlicensedSiteSeesTheLicenseBanner(t *testing.T) {
	s := newSite(t)
	if err := s.sim.SetLicense(s.addonKey, "none"); err != nil {
		t.Fatal(err)
	}
	for _, module := range []string{"data-sources", "admin"} {
		p := s.open(t, module, s.users[0].AccountID)
		if p.status != 200 || !strings.Contains(p.body, atlassian.UnlicensedMessage) || !strings.Contains(p.body, `id="license-banner"`) {
			t.Errorf("%s unlicensed: %d, banner missing", module, p.status)
		}
	}
}

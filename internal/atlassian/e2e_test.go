package atlassian_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/atlassian"
	"ferry/internal/config"
	"ferry/internal/jirasim"
	"ferry/internal/keys"
	"ferry/internal/logging"
	"ferry/internal/server"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

// recorder is the outbound client of the test: it remembers every credential
// Ferry sent or received, so the log test can look for them.
type recorder struct {
	hc      *http.Client
	mu      sync.Mutex
	secrets []string
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	if a := req.Header.Get("Authorization"); a != "" {
		r.note(a[strings.IndexByte(a, ' ')+1:])
	}
	resp, err := r.hc.Do(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/oauth2/token") {
		b, _ := io.ReadAll(resp.Body)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(b, &tok)
		r.note(tok.AccessToken)
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, err
}

func (r *recorder) note(s string) {
	if s != "" {
		r.mu.Lock()
		r.secrets = append(r.secrets, s)
		r.mu.Unlock()
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestConnectEndToEndAgainstTheSimulator drives the whole Connect life of a
// tenant with the simulated Jira: rejected forged installs, install, enable,
// a page and its API calls acting as the user, license lapse, disable and
// uninstall in parallel, reinstall with a new secret, a site rename. At the
// end no shared secret, JWT or access token appears in the logs or in any
// error body.
func TestConnectEndToEndAgainstTheSimulator(t *testing.T) {
	ctx := context.Background()
	sim := jirasim.New(jirasim.Options{Issues: 5, Projects: 1, Users: 3, AllowHTTPApp: true, Seed: 7})
	simURL, err := sim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var offset atomic.Int64
	sim.SetClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	tick := func() { offset.Add(int64(time.Second)) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()

	db := storetest.SQLite(t)
	kek, _ := keys.OpenLocalKEK(t.TempDir() + "/kek.json")
	ring := keys.NewRing(db, kek)
	tenants := tenant.NewStore(db, ring)
	cfg := config.Default()
	cfg.BaseURL, cfg.AllowLoopback = appURL, true
	cfg.InstallKeysURL, cfg.OAuthURL = simURL+"/connect-install-keys", simURL
	logs := &syncBuffer{}
	log := logging.New(logs, logging.Options{Format: "json", Level: "debug"})
	out := &recorder{hc: &http.Client{Timeout: 10 * time.Second}}
	c, err := atlassian.New(atlassian.Options{Config: cfg, Tenants: tenants, Keys: ring, Log: log,
		InstallKeysClient: out, JiraClient: out, OAuthClient: out, LicenseCacheTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}

	// Stand-ins for the connector's page and API: the page mints a context
	// token; the API acts as the user in Jira behind the license check.
	mux := http.NewServeMux()
	mux.Handle("/app/", c.RequirePage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := atlassian.PrincipalFrom(r.Context())
		tok, err := c.MintContextToken(r.Context(), p.Installation, p.AccountID)
		if err != nil {
			apperr.Write(w, r, log, err)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token": tok, "licensed": p.PageLicensed()})
	})))
	mux.Handle("/app-api/", c.RequireAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := atlassian.PrincipalFrom(r.Context())
		log.InfoContext(r.Context(), "api call", "principal", p)
		if err := c.RequireLicense(r.Context(), p.Installation); err != nil {
			apperr.Write(w, r, log, err)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", p.Installation.BaseURL+"/rest/api/3/myself", nil)
		if err := c.UserAuth(p.Installation, p.AccountID).Authorize(r.Context(), req); err != nil {
			apperr.Write(w, r, log, apperr.Wrap(err, apperr.EUNAVAILABLE, "cannot act as the user"))
			return
		}
		resp, err := out.Do(req)
		if err != nil {
			apperr.Write(w, r, log, apperr.Wrap(err, apperr.EUNAVAILABLE, "jira unreachable"))
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})))
	mux.Handle("/", server.NewServer(server.Deps{Config: cfg, Log: log, DB: db, Keys: ring, Connect: c}))
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	var bodies []string // every error body, searched for secrets at the end
	call := func(method, target, jwt string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, target, nil)
		if jwt != "" {
			req.Header.Set("Authorization", "JWT "+jwt)
		}
		resp, err := out.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 {
			bodies = append(bodies, string(b))
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	count := func() (n int) {
		db.SQL.QueryRow(`SELECT COUNT(*) FROM installations`).Scan(&n)
		return n
	}

	// 1. The simulator's forged installs are all refused and leave nothing.
	for _, v := range jirasim.InstallVariants()[1:] {
		_, err := sim.Install(ctx, appURL, v)
		var le *jirasim.LifecycleError
		if !errors.As(err, &le) || (le.Status != 401 && le.Status != 403) {
			t.Errorf("forged install %s: %v, want 401/403", v, err)
			continue
		}
		bodies = append(bodies, le.Body)
	}
	if n := count(); n != 0 {
		t.Fatalf("forged installs left %d installations", n)
	}

	// 2. Install and enable.
	in1, err := sim.Install(ctx, appURL, jirasim.InstallValid)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := tenants.ByClientKey(ctx, in1.ClientKey)
	if err != nil || inst.State != tenant.Active || inst.BaseURL != simURL || inst.TenantID == in1.ClientKey {
		t.Fatalf("after install: %+v, %v", inst, err)
	}

	// 3. A page as Jira loads it, then the page's own API call as that user.
	user := sim.Users()[1]
	pageURL, err := sim.PageURL(in1.AddonKey, "data-sources", user.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	st, page := call("GET", pageURL, "")
	if st != 200 || page["licensed"] != true {
		t.Fatalf("page: %d %v", st, page)
	}
	ctxTok := page["token"].(string)
	st, me := call("GET", appURL+"/app-api/me", ctxTok)
	if st != 200 || me["accountId"] != user.AccountID {
		t.Fatalf("api as the user: %d %v", st, me)
	}
	if st, _ := call("GET", appURL+"/app/admin", ctxTok); st != 401 {
		t.Fatalf("context token on a page: %d, want 401", st)
	}
	active, err := c.LicenseActive(ctx, inst)
	if err != nil || !active {
		t.Fatalf("LicenseActive: %v %v", active, err)
	}

	// 4. The license lapses: the feeds say 402.
	sim.SetLicense(in1.AddonKey, "expired")
	if st, p := call("GET", appURL+"/app-api/me", ctxTok); st != 402 || p["code"] != string(apperr.EPAYMENT) {
		t.Fatalf("expired license: %d %v", st, p)
	}
	sim.SetLicense(in1.AddonKey, "active")

	// 5. Disable and uninstall at once: uninstalled wins.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sim.Disable(ctx, in1.AddonKey) }()
	go func() { defer wg.Done(); sim.Uninstall(ctx, in1.AddonKey) }()
	wg.Wait()
	if got, _ := tenants.ByID(ctx, inst.TenantID); got.State != tenant.PendingDeletion {
		t.Fatalf("after parallel disable+uninstall: %s", got.State)
	}
	if st, _ := call("GET", appURL+"/app-api/me", ctxTok); st != 403 {
		t.Fatalf("uninstalled tenant: %d, want 403", st)
	}

	// 6. Reinstall: a new secret, the old one is dead, the tenant is back.
	// (A second later: a token signed in the same second as the first
	// install would be that install's token, refused as a replay.)
	tick()
	in2, err := sim.Install(ctx, appURL, jirasim.InstallValid)
	if err != nil {
		t.Fatal(err)
	}
	if in2.SharedSecret == in1.SharedSecret {
		t.Fatal("sanity: the simulator must send a new secret")
	}
	inst2, _ := tenants.ByClientKey(ctx, in1.ClientKey)
	if inst2.TenantID != inst.TenantID || inst2.State != tenant.Active {
		t.Fatalf("reinstall: %+v", inst2)
	}
	if st, _ := call("GET", appURL+"/app-api/me", ctxTok); st != 401 {
		t.Fatalf("context token signed with the old secret: %d, want 401", st)
	}
	pageURL, _ = sim.PageURL(in1.AddonKey, "data-sources", user.AccountID)
	if st, page = call("GET", pageURL, ""); st != 200 {
		t.Fatalf("page after reinstall: %d", st)
	}
	ctxTok2 := page["token"].(string)
	if st, _ := call("GET", appURL+"/app-api/me", ctxTok2); st != 200 {
		t.Fatalf("api after reinstall: %d", st)
	}

	// 7. The site is renamed: Atlassian sends installed with the new
	// baseUrl and the same secret; a later reinstall there brings a new one,
	// and acting as the user works against the new URL.
	renamed := strings.Replace(simURL, "127.0.0.1", "localhost", 1)
	tick()
	if err := sim.Rename(ctx, renamed); err != nil {
		t.Fatal(err)
	}
	if got, _ := tenants.ByClientKey(ctx, in1.ClientKey); got.BaseURL != renamed || got.TenantID != inst.TenantID {
		t.Fatalf("rename: %+v", got)
	}
	tick()
	in3, err := sim.Install(ctx, appURL, jirasim.InstallValid)
	if err != nil {
		t.Fatal(err)
	}
	inst3, _ := tenants.ByClientKey(ctx, in1.ClientKey)
	if inst3.BaseURL != renamed || inst3.TenantID != inst.TenantID || in3.SharedSecret == in2.SharedSecret {
		t.Fatalf("reinstall after the rename: %+v", inst3)
	}
	pageURL, _ = sim.PageURL(in1.AddonKey, "data-sources", user.AccountID)
	st, page = call("GET", pageURL, "")
	if st != 200 {
		t.Fatalf("page after rename: %d", st)
	}
	ctxTok3 := page["token"].(string)
	if st, me := call("GET", appURL+"/app-api/me", ctxTok3); st != 200 || me["accountId"] != user.AccountID {
		t.Fatalf("api after rename: %d %v", st, me)
	}

	// 8. Nothing secret in the logs or in any error body.
	if strings.Contains(logs.String(), user.AccountID) {
		t.Error("log contains a raw accountId")
	}
	secrets := []string{in1.SharedSecret, in2.SharedSecret, in3.SharedSecret, ctxTok, ctxTok2, ctxTok3, pageURL[strings.LastIndex(pageURL, "jwt=")+4:]}
	out.mu.Lock()
	secrets = append(secrets, out.secrets...)
	out.mu.Unlock()
	if len(secrets) < 12 {
		t.Fatalf("sanity: only %d secrets recorded", len(secrets))
	}
	logText := logs.String()
	if !strings.Contains(logText, "connect installed") {
		t.Fatalf("sanity: the lifecycle was not logged: %s", logText)
	}
	for _, s := range secrets {
		if strings.Contains(logText, s) {
			t.Errorf("log contains a secret %.12s…", s)
		}
		for _, b := range bodies {
			if strings.Contains(b, s) {
				t.Errorf("response body contains a secret %.12s…: %.200s", s, b)
			}
		}
	}
}

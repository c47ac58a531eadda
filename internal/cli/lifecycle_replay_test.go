package cli

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/config"
	"ferry/internal/export"
	"ferry/internal/jirasim"
	"ferry/internal/server"
	"ferry/internal/tenant"
)

// wire is a lifecycle callback as someone on its path saw it: a logging
// proxy, a load balancer's debug log, a leaked HAR file.
type wire struct {
	path, auth string
	body       []byte
}

// TestReplayedLifecycleTokensCannotTakeOverATenant plays the attack chain
// of issue 12 against Ferry as `ferry serve` wires it, with the simulated
// Jira: a captured installed callback is replayed with the attacker's shared
// secret; a page JWT signed with that secret mints a feed token as the site
// admin; the real Jira reinstalls; the feed token then reads the admin's
// issues. A captured uninstalled callback, replayed, marks the live tenant
// for deletion. Every link must break, and nothing may change.
func TestReplayedLifecycleTokensCannotTakeOverATenant(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim := jirasim.New(jirasim.Options{Issues: 12, Projects: 2, Users: 4, Seed: 12, AllowHTTPApp: true})
	simURL, err := sim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	// Jira's lifecycle tokens carry whole seconds: the genuine callbacks
	// below are a second apart, as they would be on a real site.
	var offset atomic.Int64
	sim.SetClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	tick := func() { offset.Add(int64(time.Second)) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()
	vars := map[string]string{
		"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data"), "FERRY_BASE_URL": appURL,
		"FERRY_EGRESS_ALLOW_LOOPBACK": "true", "FERRY_CONNECT_ALLOWED_HOSTS": "127.0.0.1:*,localhost:*",
		"FERRY_CONNECT_INSTALL_KEYS_URL": simURL + "/connect-install-keys", "FERRY_CONNECT_OAUTH_URL": simURL,
		"FERRY_LOG_FORMAT": "json", "FERRY_LOG_LEVEL": "debug",
	}
	cfg, _, err := config.Load("serve", nil, func(k string) string { return vars[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &LogBuffer{}
	a, err := openApp(ctx, env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: logs}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	var mu sync.Mutex
	var seen []wire
	ferry := server.NewServer(a.deps())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/lifecycle/") {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			mu.Lock()
			seen = append(seen, wire{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: b})
			mu.Unlock()
		}
		ferry.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	last := func(path string) wire {
		mu.Lock()
		defer mu.Unlock()
		for i := len(seen) - 1; i >= 0; i-- {
			if seen[i].path == path {
				return seen[i]
			}
		}
		t.Fatalf("no %s callback was seen", path)
		return wire{}
	}
	post := func(path, auth string, body []byte) int {
		req, _ := http.NewRequest("POST", appURL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// The genuine history: install, uninstall, reinstall. The tenant is live.
	in, err := sim.Install(ctx, appURL, jirasim.InstallValid)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Uninstall(ctx, in.AddonKey); err != nil {
		t.Fatal(err)
	}
	capturedUninstall := last("/lifecycle/uninstalled")
	tick()
	if in, err = sim.Install(ctx, appURL, jirasim.InstallValid); err != nil {
		t.Fatal(err)
	}
	capturedInstall := last("/lifecycle/installed")
	tn, err := a.tenants.ByClientKey(ctx, in.ClientKey)
	if err != nil || tn.State != tenant.Active {
		t.Fatalf("after the genuine reinstall: %+v, %v", tn, err)
	}
	admin := sim.Users()[0]
	props, _ := a.platform.Properties(ctx, tn)
	src, err := a.appAPI.Sources.Create(ctx, props, tn.TenantID, export.Input{Name: "Everything", JQL: `created >= "2000-01-01" ORDER BY key`,
		Fields: []string{"summary"}, Tables: []string{export.TableIssues}, Visibility: export.VisibilityEveryone}, admin.AccountID, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	countTokens := func() (n int) {
		a.db.SQL.QueryRow(`SELECT COUNT(*) FROM access_tokens`).Scan(&n)
		return n
	}
	tokensBefore := countTokens()

	// 1. The captured installed token, replayed with the attacker's secret.
	const attackerSecret = "attacker-chosen-secret-0123456789abcdef0123456789"
	var body map[string]any
	json.Unmarshal(capturedInstall.body, &body)
	body["sharedSecret"] = attackerSecret
	forged, _ := json.Marshal(body)
	if st := post("/lifecycle/installed", capturedInstall.auth, forged); st != http.StatusUnauthorized {
		t.Errorf("replayed installed with the attacker's secret: HTTP %d, want 401", st)
	}
	if secret, err := a.tenants.SharedSecret(ctx, tn.TenantID); err != nil || string(secret) != in.SharedSecret {
		t.Errorf("the stored shared secret is no longer the one Jira sent (err %v)", err)
	}

	// 2. A JWT signed with the attacker's secret, in the site admin's name,
	// asks the app's API for a feed token.
	now := time.Now().Unix()
	jwt := signHS256ForTest(map[string]any{"iss": in.ClientKey, "sub": admin.AccountID, "iat": now, "exp": now + 300, "qsh": "context-qsh"}, attackerSecret)
	req, _ := http.NewRequest("POST", appURL+"/app-api/tokens", strings.NewReader(`{"label":"BI","days":30}`))
	req.Header.Set("Authorization", "JWT "+jwt)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var minted struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&minted)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || minted.Token != "" {
		t.Errorf("feed token minted with a JWT signed by the attacker's secret: HTTP %d", resp.StatusCode)
	}
	if n := countTokens(); n != tokensBefore {
		t.Errorf("access tokens: %d before the attack, %d after", tokensBefore, n)
	}

	// 3. The real Jira reinstalls (an upgrade does this); 4. the attacker's
	// token, if there is one, would now read the admin's issues.
	tick()
	if _, err := sim.Install(ctx, appURL, jirasim.InstallValid); err != nil {
		t.Fatal(err)
	}
	if minted.Token != "" {
		st, _, b := fetch(t, appURL+"/odata/"+src.ID+"/Issues", minted.Token)
		t.Errorf("after the real reinstall the attacker's feed token reads the feed: HTTP %d, %.300s", st, b)
	}

	// 5. The captured uninstalled token, replayed against the live tenant.
	if st := post("/lifecycle/uninstalled", capturedUninstall.auth, capturedUninstall.body); st != http.StatusUnauthorized {
		t.Errorf("replayed uninstalled: HTTP %d, want 401", st)
	}
	if got, _ := a.tenants.ByID(ctx, tn.TenantID); got.State != tenant.Active {
		t.Errorf("a replayed uninstall left the live tenant %s", got.State)
	}

	// The control: the site's real admin still gets a working feed.
	plain, _, err := a.appAPI.Tokens.Create(ctx, tn.TenantID, admin.AccountID, "real", 30, cfg.TokenMaxDays)
	if err != nil {
		t.Fatal(err)
	}
	if st, _, b := fetch(t, appURL+"/odata/"+src.ID+"/Issues", plain); st != 200 || !bytes.Contains(b, []byte(`"value"`)) {
		t.Fatalf("the real admin's feed: HTTP %d %.200s", st, b)
	}
	if strings.Contains(logs.String(), attackerSecret) || strings.Contains(logs.String(), capturedInstall.auth[4:]) {
		t.Error("the logs hold the attacker's secret or a lifecycle token")
	}
}

// signHS256ForTest signs claims as a Connect JWT, independently of the code
// under test.
func signHS256ForTest(claims map[string]any, secret string) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

// TestSeenTokensJobIsRegistered: the job that forgets expired lifecycle
// tokens runs on its own schedule and on demand.
func TestSeenTokensJobIsRegistered(t *testing.T) {
	vars := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data")}
	run := func(args ...string) string {
		var out, errb bytes.Buffer
		if err := Run(context.Background(), append([]string{"ferry"}, args...), func(k string) string { return vars[k] }, nil, &out, &errb); err != nil {
			t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	if out := run("jobs", "list"); !strings.Contains(out, tenant.SeenTokensJobName) || !strings.Contains(out, "every 15m0s") {
		t.Fatalf("jobs list: %s", out)
	}
	if out := run("jobs", "run", tenant.SeenTokensJobName); !strings.Contains(out, "job "+tenant.SeenTokensJobName+" done") {
		t.Fatalf("jobs run: %s", out)
	}
}

// TestDemoRestartKeepsItsSiteAndToken: `ferry demo` run again on its data
// directory brings the simulated site back at the same address (Ferry
// refuses to move an installed site to another host), and the feed URL and
// token of the first run keep working.
func TestDemoRestartKeepsItsSiteAndToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	start := func() (*demo, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		logs := &LogBuffer{}
		d, err := startDemo(ctx, env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: logs},
			demoOptions{AppAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0", DataDir: dir, Issues: 20})
		if err != nil {
			cancel()
			t.Fatalf("demo: %v\n%s", err, logs)
		}
		return d, cancel
	}
	first, stop := start()
	stop()
	if err := first.wait(); err != nil {
		t.Fatal(err)
	}
	// Jira's lifecycle tokens carry whole seconds: a reinstall signed in the
	// same second as the first install would be that install's token. A
	// person restarting the demo takes longer than this.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	second, stop := start()
	defer func() { stop(); second.wait() }()
	if second.info.SimURL != first.info.SimURL || second.info.Token != first.info.Token || second.info.SourceID != first.info.SourceID {
		t.Fatalf("second run: %+v\nfirst run:  %+v", second.info, first.info)
	}
	if st, _, b := fetch(t, second.info.ODataURL+"Issues?$top=2", first.info.Token); st != 200 {
		t.Fatalf("the first run's token on the second run: %d %.200s", st, b)
	}
}

package jirasim

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestForgeInstallDeliversTheInstalledEvent: avi:forge:installed:app
// reaches the trigger's endpoint as a POST with the documented payload.
func TestForgeInstallDeliversTheInstalledEvent(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 21})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	c := rm.last("/forge/events")
	if c.Err != "" || c.Method != http.MethodPost {
		t.Fatalf("event call: %+v", c)
	}
	b := c.Body
	for k, v := range map[string]any{"id": in.ID, "installerAccountId": s.Users()[0].AccountID, "eventType": ForgeInstalledEvent,
		"context": "ari:cloud:jira::site/" + s.CloudID()} {
		if b[k] != v {
			t.Errorf("payload %s = %v, want %v", k, b[k], v)
		}
	}
	if claim(b, "app", "id") != rm.appID || claim(b, "app", "version") != "2.0.0" || claim(b, "app", "name") != "Ferry test" || claim(b, "environment", "id") != in.EnvironmentID {
		t.Errorf("payload app/environment: %v", b)
	}
	if _, ok := b["retryContext"]; ok {
		t.Error("a first attempt carries retryContext")
	}
	got := s.ForgeInstallations()
	if len(got) != 1 || got[0].ID != in.ID || got[0].License != "active" || got[0].WorkspaceARI != "ari:cloud:jira:"+s.CloudID()+":workspace/"+s.workspaceID() {
		t.Fatalf("installations %+v", got)
	}
	// Installing the same app twice on one site is refused; upgrading sends upgraded.
	if _, err := s.InstallForge(context.Background(), testForgeApp(rm)); err == nil {
		t.Fatal("a second install of the same app on one site was accepted")
	}
	if err := s.UpgradeForge(context.Background(), in.ID, "3.0.0"); err != nil {
		t.Fatal(err)
	}
	up := rm.last("/forge/events")
	if up.Body["eventType"] != ForgeUpgradedEvent || up.Body["upgraderAccountId"] != s.Users()[0].AccountID || claim(up.Body, "app", "version") != "3.0.0" || claim(up.Claims, "app", "appVersion") != "3.0.0" {
		t.Fatalf("upgraded event: %v / %v", up.Body, up.Claims)
	}
}

// TestForgeEventRetries: a remote that fails is retried with
// payload.retryContext naming the documented reason, a fresh FIT each time,
// until it accepts.
func TestForgeEventRetries(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 22})
	quickRetries(s)
	rm := newForgeRemote(t, s)
	answers := []int{500, 401, 0, 204} // 0: hang until Forge gives up
	n := 0
	rm.setRespond(func(r *http.Request, c remoteCall) (int, any) {
		if r.URL.Path != "/forge/events" {
			return 200, map[string]any{}
		}
		a := answers[min(n, len(answers)-1)]
		n++
		if a == 0 {
			<-r.Context().Done() // the sim's 5 s (here shortened) deadline ends the wait
			return 500, nil
		}
		return a, nil
	})
	s.SetForgeTimings(ForgeTimings{EventTimeout: 200 * time.Millisecond})
	in := installForge(t, s, testForgeApp(rm))
	calls := rm.callsTo("/forge/events")
	if len(calls) != 4 {
		t.Fatalf("%d attempts, want 4", len(calls))
	}
	wantReasons := []string{"", "INVALID_REMOTE_INVOCATION_ERROR", "INVALID_FORGE_INVOCATION_TOKEN", "TIMEOUT_ERROR"}
	jtis := map[any]bool{}
	for i, c := range calls {
		if c.Err != "" {
			t.Fatalf("attempt %d: FIT refused: %s", i+1, c.Err)
		}
		rc, _ := c.Body["retryContext"].(map[string]any)
		if i == 0 && rc != nil || i > 0 && (rc["retryCount"] != float64(i) || rc["retryReason"] != wantReasons[i]) {
			t.Errorf("attempt %d: retryContext %v, want count %d reason %s", i+1, rc, i, wantReasons[i])
		}
		if c.Body["id"] != in.ID {
			t.Errorf("attempt %d: payload %v", i+1, c.Body)
		}
		jtis[c.Claims["jti"]] = true
	}
	if len(jtis) != 4 {
		t.Error("retries reuse a FIT")
	}
	var outcomes []string
	for _, d := range s.ForgeStats().Deliveries {
		if d.Kind == "event" {
			outcomes = append(outcomes, d.Outcome)
		}
	}
	if !slices.Equal(outcomes, []string{"INVALID_REMOTE_INVOCATION_ERROR", "INVALID_FORGE_INVOCATION_TOKEN", "TIMEOUT_ERROR", "ok"}) {
		t.Fatalf("delivery log %v", outcomes)
	}
}

// TestForgeEventGivesUpAfterFourRetries: five attempts, then a
// DeliveryError; the installation stands, as on Atlassian.
func TestForgeEventGivesUpAfterFourRetries(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 23})
	quickRetries(s)
	rm := newForgeRemote(t, s)
	rm.setRespond(func(r *http.Request, c remoteCall) (int, any) { return 503, map[string]any{"error": "down"} })
	in, err := s.InstallForge(context.Background(), testForgeApp(rm))
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 5 || de.Status != 503 || de.Reason != retryInvalidResponse {
		t.Fatalf("err %v", err)
	}
	if len(rm.callsTo("/forge/events")) != 5 {
		t.Fatalf("%d attempts", len(rm.callsTo("/forge/events")))
	}
	if got := s.ForgeInstallations(); len(got) != 1 || got[0].ID != in.ID {
		t.Fatal("the installation must stand when the remote refuses the event")
	}
}

// TestForgeScheduledTrigger: the trigger on demand carries a system token
// of at least 2 h and no user token; stopped, it delivers nothing until
// resumed.
func TestForgeScheduledTrigger(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 24})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	ctx := context.Background()
	if err := s.FireForgeTrigger(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	c := rm.last("/forge/trigger")
	sys := c.Header.Get("x-forge-oauth-system")
	if c.Err != "" || sys == "" || c.Header.Get("x-forge-oauth-user") != "" || tokenExp(t, sys).Before(s.now().Add(2*time.Hour)) {
		t.Fatalf("trigger call: err %q, system token exp %v", c.Err, tokenExp(t, sys))
	}
	if claim(c.Body, "context", "cloudId") != s.CloudID() || claim(c.Body, "context", "moduleKey") != "ferry-token-refresh" {
		t.Errorf("trigger body %v", c.Body)
	}
	// The token works for what a remote does with it.
	if r := gw(t, s, "GET", "/rest/api/3/myself", sys, nil); r.resp.StatusCode != 200 {
		t.Fatalf("trigger token on the gateway: %d %s", r.resp.StatusCode, r.body)
	}
	if err := s.StopForgeTriggers(in.ID); err != nil {
		t.Fatal(err)
	}
	before := len(rm.callsTo("/forge/trigger"))
	if err := s.FireForgeTrigger(ctx, in.ID); !errors.Is(err, ErrTriggersStopped) {
		t.Fatalf("stopped trigger: %v", err)
	}
	if got, _ := s.ForgeInstallation(in.ID); !got.TriggersStopped || len(rm.callsTo("/forge/trigger")) != before {
		t.Fatal("a stopped trigger reached the remote")
	}
	if err := s.ResumeForgeTriggers(in.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.FireForgeTrigger(ctx, in.ID); err != nil || len(rm.callsTo("/forge/trigger")) != before+1 {
		t.Fatalf("resumed trigger: %v", err)
	}
	// RunForgeTriggers fires on its own until cancelled.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.RunForgeTriggers(rctx, 5*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(rm.callsTo("/forge/trigger")) < before+3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if len(rm.callsTo("/forge/trigger")) < before+3 {
		t.Fatal("RunForgeTriggers did not fire")
	}
}

// TestForgeUninstall: preUninstall arrives while the system token still
// works (the remote may clean up with it); afterwards every token of the
// installation is refused, its storage is gone, and a reinstall gets a new
// installationId.
func TestForgeUninstall(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 25})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	ctx := context.Background()
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")
	if r := call(t, s.BaseURL(), "POST", "/forge/storage/kvs/v1/set", "Bearer "+sys, map[string]any{"key": "defs", "value": map[string]any{"a": 1}}); r.resp.StatusCode != 204 {
		t.Fatalf("set: %d %s", r.resp.StatusCode, r.body)
	}
	var during int
	rm.setRespond(func(r *http.Request, c remoteCall) (int, any) {
		if r.URL.Path == "/forge/uninstall" {
			tok := r.Header.Get("x-forge-oauth-system")
			during = call(t, s.BaseURL(), "POST", "/forge/storage/kvs/v1/delete", "Bearer "+tok, map[string]any{"key": "defs"}).resp.StatusCode
		}
		return 200, map[string]any{}
	})
	if err := s.UninstallForge(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if c := rm.last("/forge/uninstall"); c.Err != "" || claim(c.Body, "context", "cloudId") != s.CloudID() || during != 204 {
		t.Fatalf("preUninstall: %+v, storage during it: %d", c, during)
	}
	if r := gw(t, s, "GET", "/rest/api/3/myself", sys, nil); r.resp.StatusCode != 401 {
		t.Fatalf("a token after uninstall: %d", r.resp.StatusCode)
	}
	if len(s.ForgeInstallations()) != 0 || len(s.ForgeStorage(in.ID)) != 0 {
		t.Fatal("installation or storage survived the uninstall")
	}
	if err := s.UninstallForge(ctx, in.ID); err == nil {
		t.Fatal("uninstalling twice succeeded")
	}
	again := installForge(t, s, testForgeApp(rm))
	if again.ID == in.ID {
		t.Fatal("a reinstall kept the installationId")
	}
}

// TestForgePreUninstallFailureDoesNotBlock: one attempt, an error, and the
// app is uninstalled anyway.
func TestForgePreUninstallFailureDoesNotBlock(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 26})
	quickRetries(s)
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	rm.setRespond(func(r *http.Request, c remoteCall) (int, any) { return 500, nil })
	err := s.UninstallForge(context.Background(), in.ID)
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 1 || len(rm.callsTo("/forge/uninstall")) != 1 {
		t.Fatalf("err %v, %d calls", err, len(rm.callsTo("/forge/uninstall")))
	}
	if len(s.ForgeInstallations()) != 0 {
		t.Fatal("a failed preUninstall blocked the uninstall")
	}
}

// TestForgeLicence: app.license appears only for PRODUCTION installs of
// licensed apps, following the scripted state.
func TestForgeLicence(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 27})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	lic := func() any {
		if err := s.FireForgeTrigger(context.Background(), in.ID); err != nil {
			t.Fatal(err)
		}
		return claim(rm.last("/forge/trigger").Claims, "app", "license")
	}
	for _, tc := range []struct {
		state  string
		active any
	}{{"active", true}, {"inactive", false}, {"none", nil}, {"active", true}} {
		if err := s.SetForgeLicense(in.ID, tc.state); err != nil {
			t.Fatal(err)
		}
		l := lic()
		if tc.active == nil && l != nil || tc.active != nil && claim(l.(map[string]any), "isActive") != tc.active {
			t.Errorf("licence %s: claim %v", tc.state, l)
		}
	}
	if err := s.SetForgeLicense(in.ID, "expired"); err == nil {
		t.Error("an unknown licence state was accepted")
	}
	if err := s.UninstallForge(context.Background(), in.ID); err != nil {
		t.Fatal(err)
	}
	dev := testForgeApp(rm)
	dev.Environment = "DEVELOPMENT"
	in = installForge(t, s, dev)
	if l := lic(); l != nil || claim(rm.last("/forge/trigger").Claims, "app", "environment", "type") != "DEVELOPMENT" {
		t.Errorf("a DEVELOPMENT install carries a licence: %v", l)
	}
}

// TestForgeAppValidation: apps the platform would not deploy are refused
// and change nothing; endpoints asking for tokens without the scopes get
// none, with a warning.
func TestForgeAppValidation(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 28})
	rm := newForgeRemote(t, s)
	for name, tc := range map[string]struct {
		edit func(*ForgeApp)
		want string
	}{
		"bad app id":          {func(a *ForgeApp) { a.ID = "app/123" }, "app.id"},
		"unknown remote":      {func(a *ForgeApp) { a.Endpoints["x"] = ForgeEndpoint{Remote: "nowhere"} }, `remote "nowhere"`},
		"unknown endpoint":    {func(a *ForgeApp) { a.Triggers[0].Endpoint = "missing" }, `endpoint "missing"`},
		"bad interval":        {func(a *ForgeApp) { a.Scheduled[0].Interval = "minute" }, "interval"},
		"missing resource":    {func(a *ForgeApp) { a.Pages[0].Resource = "nope" }, `resource "nope"`},
		"plain http remote":   {func(a *ForgeApp) { a.Remotes["ferry"] = "http://ferry.example.com" }, "must be https"},
		"impersonation scope": {func(a *ForgeApp) { a.Impersonation = append(a.Impersonation, "manage:jira-configuration") }, "allowImpersonation"},
		"environment":         {func(a *ForgeApp) { a.Environment = "QA" }, "environment"},
	} {
		app := testForgeApp(rm)
		tc.edit(&app)
		if _, err := s.InstallForge(context.Background(), app); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one about %s", name, err, tc.want)
		}
	}
	if len(s.ForgeInstallations()) != 0 || len(rm.callsTo("/forge/events")) != 0 {
		t.Fatal("a refused app was installed or invoked")
	}
	app := testForgeApp(rm)
	app.Scopes, app.Impersonation = []string{"read:jira-work"}, nil // no read:app-system-token
	in := installForge(t, s, app)
	if len(in.Warnings) == 0 || rm.last("/forge/events").Header.Get("x-forge-oauth-system") != "" {
		t.Fatalf("without read:app-system-token: warnings %v, token sent %v", in.Warnings, rm.last("/forge/events").Header.Get("x-forge-oauth-system") != "")
	}
}

// TestParseForgeManifest: a manifest as `forge deploy` reads it gives the
// same app as the Go description, with variables substituted and resource
// paths resolved against the manifest's folder.
func TestParseForgeManifest(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 29})
	rm := newForgeRemote(t, s)
	got, err := LoadForgeManifest("testdata/forge/manifest.yml", map[string]string{"FERRY_URL": rm.srv.URL, "APP_ID": rm.appID})
	if err != nil {
		t.Fatal(err)
	}
	want := testForgeApp(rm)
	want.Name, want.Version = "", ""
	want.Resources = map[string]string{"main": "testdata/forge/ui-build"}
	if !equalJSON(t, got, want) {
		gj, _ := jsonMarshalIndent(got)
		wj, _ := jsonMarshalIndent(want)
		t.Fatalf("manifest gives\n%s\nwant\n%s", gj, wj)
	}
	if _, err := LoadForgeManifest("testdata/forge/manifest.yml", map[string]string{"FERRY_URL": rm.srv.URL}); err == nil || !strings.Contains(err.Error(), "APP_ID") {
		t.Fatalf("an unset variable: %v", err)
	}
	for name, text := range map[string]string{
		"not yaml":     "app: [",
		"scopes":       "permissions:\n  scopes: 7\n",
		"remote":       "remotes:\n  - key: r\n",
		"preUninstall": "modules:\n  preUninstall:\n    - key: a\n      endpoint: x\n    - key: b\n      endpoint: y\n",
	} {
		if _, err := ParseForgeManifest([]byte(text), ".", nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseForgeManifest: any text is parsed or refused without a panic,
// the same way twice, and what parses installs or is refused cleanly.
func FuzzParseForgeManifest(f *testing.F) {
	if b, err := os.ReadFile("testdata/forge/manifest.yml"); err == nil {
		f.Add(string(b))
	}
	for _, seed := range []string{"", "app: [", "modules:\n  endpoint:\n    - key: a\n      remote: r\n", "permissions:\n  scopes:\n    read:jira-work: {allowImpersonation: true}\n",
		"remotes:\n  - key: r\n    baseUrl: {default: https://x.example}\n", "${X}", "modules: {jira:adminPage: [{key: p, resource: r, resolver: {endpoint: e}}]}"} {
		f.Add(seed)
	}
	s := New(Options{Issues: -1, Users: 2, Seed: 1, AllowHTTPApp: true})
	f.Fuzz(func(t *testing.T, text string) {
		vars := map[string]string{"APP_ID": testForgeAppID, "FERRY_URL": "https://ferry.example", "X": "1"}
		a1, err1 := ParseForgeManifest([]byte(text), ".", vars)
		a2, err2 := ParseForgeManifest([]byte(text), ".", vars)
		if (err1 == nil) != (err2 == nil) || err1 == nil && !equalJSON(t, a1, a2) {
			t.Fatal("parsing is not deterministic")
		}
		if err1 == nil {
			_, _, _ = s.normaliseForgeApp(a1)
		}
	})
}

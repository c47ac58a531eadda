package jirasim

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestInstallSendsSignedInstalledCallback(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 6})
	app := newTestApp(t, srv.URL, "ferry")
	in := app.install(s)
	events := app.eventsCopy()
	if len(events) != 2 || events[0].Event != "installed" || events[1].Event != "enabled" {
		t.Fatalf("events: %+v", events)
	}
	body := events[0].Body
	for _, k := range []string{"key", "clientKey", "sharedSecret", "baseUrl", "displayUrl", "productType", "description", "serviceEntitlementNumber", "entitlementId", "entitlementNumber", "oauthClientId", "eventType", "pluginsVersion", "serverVersion"} {
		if v, _ := body[k].(string); v == "" {
			t.Errorf("installed payload lacks %s", k)
		}
	}
	if id, ok := body["installationId"]; ok {
		t.Errorf("a Connect app not on Forge got installationId %v", id) // see TestMigrateConnectToForge
	}
	if body["key"] != "ferry" || body["productType"] != "jira" || body["baseUrl"] != srv.URL || body["clientKey"] != in.ClientKey || body["sharedSecret"] != in.SharedSecret {
		t.Errorf("payload %v", body)
	}
	if got, ok := s.Installation("ferry"); !ok || !got.Enabled || got.License != "active" || got.Status != 204 || len(got.Modules) != 2 {
		t.Errorf("installation %+v", got)
	}
	// A reinstall keeps the clientKey and rotates the secret.
	again := app.install(s)
	if again.ClientKey != in.ClientKey || again.SharedSecret == in.SharedSecret || again.OAuthClientID != in.OAuthClientID {
		t.Error("reinstall must keep clientKey/oauthClientId and rotate sharedSecret")
	}
	// After a rename the next install carries the new base URL.
	renamed := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	s.RenameSite(renamed)
	app.install(s)
	if evs := app.eventsCopy(); evs[len(evs)-2].Body["baseUrl"] != renamed {
		t.Errorf("after rename baseUrl = %v", evs[len(evs)-2].Body["baseUrl"])
	}
	if err := s.Uninstall(context.Background(), "ferry"); err != nil {
		t.Fatal(err)
	}
	if ev := app.lastEvent(); ev.Event != "uninstalled" || ev.Err != "" {
		t.Errorf("uninstalled: %+v", ev)
	}
	if _, ok := s.Installation("ferry"); ok {
		t.Error("still installed")
	}
}

// TestBrokenInstallVariantsAreRefused: a careful app refuses every broken
// variant, and the site does not record the install.
func TestBrokenInstallVariantsAreRefused(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 6})
	app := newTestApp(t, srv.URL, "careful")
	for _, v := range InstallVariants()[1:] {
		in, err := s.Install(context.Background(), app.srv.URL, v)
		var le *LifecycleError
		if !errors.As(err, &le) || le.Event != "installed" || (le.Status != 401 && le.Status != 403) {
			t.Errorf("%s: err %v", v, err)
			continue
		}
		if in.Status != le.Status {
			t.Errorf("%s: Installation.Status %d, error status %d", v, in.Status, le.Status)
		}
		if _, ok := s.Installation("careful"); ok {
			t.Errorf("%s: refused install was recorded", v)
		}
		pv, err := ParseInstallVariant(v.String())
		if err != nil || pv != v {
			t.Errorf("variant name round trip %s: %v", v, err)
		}
	}
	if v := app.lastEvent(); v.Event != "installed" || v.Status == 0 {
		t.Errorf("last event %+v", v)
	}
	app.install(s)
}

func TestDescriptorMustUseHTTPSUnlessAllowed(t *testing.T) {
	_, srv := newTestSim(t, Options{Issues: 5})
	strict := New(Options{Issues: 5}) // AllowHTTPApp off
	app := newTestApp(t, srv.URL, "plain-http")
	if _, err := strict.Install(context.Background(), app.srv.URL, InstallValid); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("http app accepted: %v", err)
	}
}

func TestAppPropertiesBelongToTheirApp(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 2})
	a := newTestApp(t, srv.URL, "app-a").install(s)
	b := newTestApp(t, srv.URL, "app-b").install(s)
	pa := "/rest/atlassian-connect/1/addons/app-a/properties/config"
	call(t, srv.URL, "PUT", pa, appJWT(t, a, "PUT", pa), `{"tenant":"a"}`).status(t, 201)
	// App b may not read or write app a's properties.
	call(t, srv.URL, "GET", pa, appJWT(t, b, "GET", pa), nil).status(t, 401)
	call(t, srv.URL, "PUT", pa, appJWT(t, b, "PUT", pa), `{}`).status(t, 401)
	// Nor may a user, even through the app's bearer token.
	call(t, srv.URL, "GET", pa, bearerFor(t, srv.URL, a, s.Users()[0].AccountID, "READ ACT_AS_USER"), nil).status(t, 401)
	var got struct {
		Key   string
		Value map[string]string
	}
	call(t, srv.URL, "GET", pa, appJWT(t, a, "GET", pa), nil).status(t, 200).decode(t, &got)
	if got.Key != "config" || got.Value["tenant"] != "a" {
		t.Errorf("property %+v", got)
	}
	// 32 KB limit, valid JSON only, key length.
	big := `"` + strings.Repeat("x", maxPropertyValue) + `"`
	call(t, srv.URL, "PUT", pa, appJWT(t, a, "PUT", pa), big).status(t, 400)
	fits := `"` + strings.Repeat("x", maxPropertyValue-2) + `"`
	call(t, srv.URL, "PUT", pa, appJWT(t, a, "PUT", pa), fits).status(t, 200)
	call(t, srv.URL, "PUT", pa, appJWT(t, a, "PUT", pa), `not json`).status(t, 400)
	long := "/rest/atlassian-connect/1/addons/app-a/properties/" + strings.Repeat("k", 128)
	call(t, srv.URL, "PUT", long, appJWT(t, a, "PUT", long), `1`).status(t, 400)
	// Uninstall drops the properties.
	if err := s.Uninstall(context.Background(), "app-a"); err != nil {
		t.Fatal(err)
	}
	a = newTestApp(t, srv.URL, "app-a").install(s)
	call(t, srv.URL, "GET", pa, appJWT(t, a, "GET", pa), nil).status(t, 404)
}

func TestLicenseStateIsSwitchable(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 2})
	in := newTestApp(t, srv.URL, "lic-app").install(s)
	path := "/rest/atlassian-connect/1/addons/lic-app"
	get := func() map[string]any {
		var out map[string]any
		call(t, srv.URL, "GET", path, appJWT(t, in, "GET", path), nil).status(t, 200).decode(t, &out)
		return out
	}
	lic := func(m map[string]any) any {
		l, ok := m["license"].(map[string]any)
		if !ok {
			return nil
		}
		return l["active"]
	}
	if got := get(); lic(got) != true || got["state"] != "ENABLED" {
		t.Errorf("active: %v", got)
	}
	s.SetLicense("lic-app", "expired")
	if got := get(); lic(got) != false {
		t.Errorf("expired: %v", got)
	}
	s.SetLicense("lic-app", "none")
	if got := get(); lic(got) != nil {
		t.Errorf("none: %v", got)
	}
	if err := s.SetLicense("lic-app", "bogus"); err == nil {
		t.Error("bogus state accepted")
	}
	u, _ := s.PageURL("lic-app", "home", s.Users()[0].AccountID)
	if !strings.Contains(u, "lic=none") {
		t.Errorf("page url without license: %s", u)
	}
	// A non-admin user may not read it; the admin may.
	call(t, srv.URL, "GET", path, basicAuth(s.Users()[1]), nil).status(t, 401)
	call(t, srv.URL, "GET", path, basicAuth(s.Users()[0]), nil).status(t, 200)
}

func TestPageURLIsSignedForTheUser(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Users: 4, Seed: 2})
	app := newTestApp(t, srv.URL, "pages")
	in := app.install(s)
	user := s.Users()[2]
	raw, err := s.PageURL("pages", "home", user.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	if !strings.HasPrefix(raw, app.srv.URL+"/app/home?") {
		t.Errorf("url %s", raw)
	}
	q := u.Query()
	if q.Get("project") != "" || q.Get("mode") != "full view" || q.Get("lic") != "active" || q.Get("xdm_e") != in.BaseURL || q.Get("loc") == "" || q.Get("tz") == "" || q.Has("user_id") || !q.Has("cp") {
		t.Errorf("query %v", q)
	}
	var claims jwt.MapClaims
	_, err = jwt.ParseWithClaims(q.Get("jwt"), &claims, func(*jwt.Token) (any, error) { return []byte(in.SharedSecret), nil }, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != in.ClientKey || claims["sub"] != user.AccountID || claims["qsh"] != QSH("GET", u.EscapedPath(), "", u.RawQuery) {
		t.Errorf("claims %v", claims)
	}
	if _, err := s.PageURL("pages", "nope", user.AccountID); err == nil {
		t.Error("unknown module accepted")
	}
	// The Jira frame embeds it and offers a user switcher.
	r := call(t, srv.URL, "GET", "/jira/apps/pages/home?as="+url.QueryEscape(user.AccountID), "", nil).status(t, 200)
	html := string(r.body)
	for _, want := range []string{"Jira (simulated)", `<iframe id="app-frame"`, app.srv.URL + "/app/home?", user.DisplayName, `id="user-switcher"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	call(t, srv.URL, "GET", "/jira/apps/pages/missing", "", nil).status(t, 404)
}

func TestReportAccounts(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Users: 20, Seed: 2})
	in := newTestApp(t, srv.URL, "gdpr").install(s)
	clock := &fakeClock{t: time.Now()}
	s.setClock(clock.now)
	path := "/rest/atlassian-connect/latest/report-accounts"
	report := func(accounts []map[string]string) result {
		return call(t, srv.URL, "POST", path, appJWT(t, in, "POST", path), map[string]any{"accounts": accounts})
	}
	var all []map[string]string
	closed, updated := 0, 0
	old := "2000-01-01T00:00:00Z"
	for _, u := range s.Users() {
		all = append(all, map[string]string{"accountId": u.AccountID, "updatedAt": old})
		if u.Closed {
			closed++
		} else {
			updated++
		}
	}
	var out struct {
		Accounts []struct{ AccountID, Status string }
	}
	report(all).status(t, 200).decode(t, &out)
	got := map[string]int{}
	for _, a := range out.Accounts {
		got[a.Status]++
	}
	if closed == 0 || got["closed"] != closed || got["updated"] != updated {
		t.Errorf("statuses %v, want %d closed %d updated", got, closed, updated)
	}
	// Nothing changed since now: 204.
	var fresh []map[string]string
	for _, u := range s.Users() {
		if !u.Closed {
			fresh = append(fresh, map[string]string{"accountId": u.AccountID, "updatedAt": time.Now().UTC().Format(time.RFC3339)})
		}
	}
	report(fresh).status(t, 204)
	big := make([]map[string]string, 91)
	for i := range big {
		big[i] = map[string]string{"accountId": fmt.Sprint("a", i), "updatedAt": old}
	}
	report(big).status(t, 400)
	// Calling too often: the burst runs out and 429 says when to retry.
	var limited result
	for i := 0; i < reportBurst+1; i++ {
		limited = report(fresh)
	}
	limited.status(t, 429)
	if limited.resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	clock.advance(2 * reportInterval)
	report(fresh).status(t, 204)
	// Users may not report.
	call(t, srv.URL, "POST", path, basicAuth(s.Users()[0]), map[string]any{"accounts": fresh}).status(t, 403)
}

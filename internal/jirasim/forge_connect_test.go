package jirasim

import (
	"context"
	"strings"
	"testing"
)

// TestMigrateConnectToForge: a Connect installation moves to Forge. The
// Connect app receives installed again, signed, with installationId beside
// the same clientKey and shared secret; the Forge remote receives
// avi:forge:upgraded:app; the Forge app reads (not writes) the Connect
// app's properties with its system token; other Forge apps cannot; and one
// uninstall ends both.
func TestMigrateConnectToForge(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 61})
	capp := newTestApp(t, srv.URL, "com.example.ferry")
	cin := capp.install(s)
	props := "/rest/atlassian-connect/1/addons/" + cin.AddonKey + "/properties/sources"
	call(t, srv.URL, "PUT", props, appJWT(t, cin, "PUT", props), `{"sources":[{"name":"Sales"}]}`).status(t, 201)

	rm := newForgeRemote(t, s)
	app := testForgeApp(rm)
	if _, err := s.MigrateConnectToForge(context.Background(), app); err == nil {
		t.Fatal("an app without app.connect.key migrated")
	}
	app.ConnectKey = "com.example.other"
	if _, err := s.MigrateConnectToForge(context.Background(), app); err == nil {
		t.Fatal("migrated a Connect app that is not installed")
	}
	app.ConnectKey = cin.AddonKey
	if _, err := s.InstallForge(context.Background(), app); err == nil || !strings.Contains(err.Error(), "MigrateConnectToForge") {
		t.Fatalf("a plain Forge install over a Connect install: %v", err)
	}
	fi, err := s.MigrateConnectToForge(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	ev := capp.lastEvent()
	if ev.Event != "installed" || ev.Err != "" || ev.Body["installationId"] != fi.ID || ev.Body["clientKey"] != cin.ClientKey || ev.Body["sharedSecret"] != cin.SharedSecret {
		t.Fatalf("Connect callback after migration: %+v", ev)
	}
	if got, _ := s.Installation(cin.AddonKey); got.InstallationID != fi.ID || got.SharedSecret != cin.SharedSecret {
		t.Fatalf("Connect record: %+v", got)
	}
	up := rm.last("/forge/events")
	if up.Err != "" || up.Body["eventType"] != ForgeUpgradedEvent || up.Body["id"] != fi.ID || fi.ConnectKey != cin.AddonKey {
		t.Fatalf("Forge side: %+v, installation %+v", up, fi)
	}
	if _, err := s.MigrateConnectToForge(context.Background(), app); err == nil {
		t.Fatal("migrated twice")
	}

	// The Connect app keeps working as before.
	call(t, srv.URL, "GET", props, appJWT(t, cin, "GET", props), nil).status(t, 200)
	// The Forge app reads the properties with its system token.
	sys := up.Header.Get("x-forge-oauth-system")
	var got struct {
		Key   string
		Value map[string][]map[string]string
	}
	gw(t, s, "GET", props, sys, nil).status(t, 200).decode(t, &got)
	if got.Key != "sources" || got.Value["sources"][0]["name"] != "Sales" {
		t.Fatalf("Forge read of the Connect property: %+v", got)
	}
	if r := gw(t, s, "PUT", props, sys, map[string]any{"x": 1}); r.resp.StatusCode != 403 {
		t.Fatalf("Forge write of a Connect property: %d", r.resp.StatusCode)
	}
	if r := gw(t, s, "GET", "/rest/atlassian-connect/1/addons/"+cin.AddonKey+"/properties", sys, nil); r.resp.StatusCode != 200 || !strings.Contains(string(r.body), `"sources"`) {
		t.Fatalf("Forge listing of the Connect properties: %d %s", r.resp.StatusCode, r.body)
	}
	orm := newForgeRemote(t, s)
	orm.appID = "ari:cloud:ecosystem::app/" + s.uuidFrom("unrelated-app")
	installForge(t, s, testForgeApp(orm))
	if r := gw(t, s, "GET", props, orm.last("/forge/events").Header.Get("x-forge-oauth-system"), nil); r.resp.StatusCode != 401 {
		t.Fatalf("an unrelated Forge app read the properties: %d", r.resp.StatusCode)
	}

	// One app, one uninstall: preUninstall, then the Connect callback.
	if err := s.UninstallForge(context.Background(), fi.ID); err != nil {
		t.Fatal(err)
	}
	if len(rm.callsTo("/forge/uninstall")) != 1 || capp.lastEvent().Event != "uninstalled" {
		t.Fatalf("uninstall: preUninstall calls %d, last Connect event %s", len(rm.callsTo("/forge/uninstall")), capp.lastEvent().Event)
	}
	if _, ok := s.Installation(cin.AddonKey); ok {
		t.Fatal("the Connect installation survived")
	}
}

// TestConnectUninstallOfAMigratedSiteEndsForgeToo: uninstalling through
// Connect runs preUninstall and revokes the Forge tokens as well.
func TestConnectUninstallOfAMigratedSiteEndsForgeToo(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 62})
	capp := newTestApp(t, srv.URL, "com.example.ferry")
	capp.install(s)
	rm := newForgeRemote(t, s)
	app := testForgeApp(rm)
	app.ConnectKey = "com.example.ferry"
	fi, err := s.MigrateConnectToForge(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")
	if err := s.Uninstall(context.Background(), "com.example.ferry"); err != nil {
		t.Fatal(err)
	}
	if len(rm.callsTo("/forge/uninstall")) != 1 || len(s.ForgeInstallations()) != 0 {
		t.Fatal("the Forge side of a migrated site survived a Connect uninstall")
	}
	if r := gw(t, s, "GET", "/rest/api/3/myself", sys, nil); r.resp.StatusCode != 401 {
		t.Fatalf("a Forge token after uninstall: %d", r.resp.StatusCode)
	}
	if _, ok := s.ForgeInstallation(fi.ID); !ok {
		t.Fatal("the uninstalled record is gone entirely")
	}
}

package jirasim

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestForgeControlAPI drives the Forge side through /_sim/forge/ as the
// demo and out-of-process tests do: install from manifest text, fire,
// stop and resume the trigger, rotate keys, set the licence, look up the
// page, uninstall; bad requests get a clear error and change nothing.
func TestForgeControlAPI(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 71})
	rm := newForgeRemote(t, s)
	manifest, err := os.ReadFile("testdata/forge/manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	post := func(path string, body any) result { return call(t, srv.URL, "POST", "/_sim/forge/"+path, "", body) }

	for _, bad := range []struct {
		body any
		want string
	}{
		{map[string]any{}, "exactly one of"},
		{map[string]any{"manifest": string(manifest)}, "unset variables"},
		{map[string]any{"manifest": "app: [", "vars": map[string]string{}}, "manifest"},
		{`{"manifest":`, "invalid JSON"},
	} {
		if r := post("install", bad.body); r.resp.StatusCode != 400 || !strings.Contains(string(r.body), bad.want) {
			t.Errorf("install %v: %d %s", bad.body, r.resp.StatusCode, r.body)
		}
	}
	if len(s.ForgeInstallations()) != 0 {
		t.Fatal("a refused install installed something")
	}
	var in ForgeInstallation
	post("install", map[string]any{"manifest": string(manifest), "vars": map[string]string{"FERRY_URL": rm.srv.URL, "APP_ID": rm.appID}}).status(t, 200).decode(t, &in)
	if in.AppID != rm.appID || rm.last("/forge/events").Err != "" {
		t.Fatalf("installed %+v", in)
	}
	id := map[string]string{"installation_id": in.ID}

	post("trigger", id).status(t, 200)
	post("trigger", map[string]string{}).status(t, 200) // every installation
	if n := len(rm.callsTo("/forge/trigger")); n != 2 {
		t.Fatalf("%d trigger calls", n)
	}
	post("triggers/stop", id).status(t, 200)
	if r := post("trigger", id); r.resp.StatusCode != http.StatusConflict {
		t.Fatalf("stopped trigger: %d", r.resp.StatusCode)
	}
	post("trigger", map[string]string{}).status(t, 200) // skips stopped ones
	post("triggers/resume", id).status(t, 200)
	post("trigger", id).status(t, 200)
	if n := len(rm.callsTo("/forge/trigger")); n != 3 {
		t.Fatalf("%d trigger calls after stop/resume", n)
	}

	var rot struct {
		Kid  string
		Kids []string
	}
	post("jwks/rotate", nil).status(t, 200).decode(t, &rot)
	if len(rot.Kids) != 2 || rot.Kids[1] != rot.Kid {
		t.Fatalf("rotate: %+v", rot)
	}
	post("jwks/retire", nil).status(t, 200).decode(t, &rot)
	if len(rot.Kids) != 1 {
		t.Fatalf("retire: %+v", rot)
	}
	post("trigger", id).status(t, 200)
	if c := rm.last("/forge/trigger"); c.Err != "" || c.Kid != rot.Kids[0] {
		t.Fatalf("after rotation: kid %s err %s", c.Kid, c.Err)
	}

	post("license", map[string]string{"installation_id": in.ID, "state": "inactive"}).status(t, 200)
	if r := post("license", map[string]string{"installation_id": in.ID, "state": "gone"}); r.resp.StatusCode != 400 {
		t.Fatalf("bad licence state: %d", r.resp.StatusCode)
	}
	if got, _ := s.ForgeInstallation(in.ID); got.License != "inactive" {
		t.Fatalf("licence %s", got.License)
	}
	post("upgrade", map[string]string{"installation_id": in.ID, "version": "5.0.0"}).status(t, 200)
	if rm.last("/forge/events").Body["eventType"] != ForgeUpgradedEvent {
		t.Fatal("upgrade sent no event")
	}
	var page struct{ URL string }
	call(t, srv.URL, "GET", "/_sim/forge/page-url?installation_id="+in.ID+"&module_key=ferry-admin", "", nil).status(t, 200).decode(t, &page)
	if !strings.HasPrefix(page.URL, srv.URL+"/jira/forge/") {
		t.Fatalf("page url %s", page.URL)
	}
	post("service-account", map[string]any{"account_id": s.Users()[2].AccountID, "service_account": true}).status(t, 200)
	if r := post("service-account", map[string]any{"account_id": "nobody", "service_account": true}); r.resp.StatusCode != 400 {
		t.Fatalf("unknown service account: %d", r.resp.StatusCode)
	}
	var st ForgeStats
	call(t, srv.URL, "GET", "/_sim/forge/stats", "", nil).status(t, 200).decode(t, &st)
	if len(st.Deliveries) == 0 {
		t.Fatal("no deliveries in stats")
	}
	var list []ForgeInstallation
	call(t, srv.URL, "GET", "/_sim/forge/installations", "", nil).status(t, 200).decode(t, &list)
	if len(list) != 1 || list[0].ID != in.ID {
		t.Fatalf("installations %+v", list)
	}
	post("uninstall", id).status(t, 200)
	if r := post("uninstall", id); r.resp.StatusCode != 404 {
		t.Fatalf("second uninstall: %d", r.resp.StatusCode)
	}
	if r := post("trigger", id); r.resp.StatusCode != 404 {
		t.Fatalf("trigger of an uninstalled app: %d", r.resp.StatusCode)
	}
}

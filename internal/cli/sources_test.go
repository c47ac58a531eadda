package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jira"
)

// appClient is Ferry's client of the simulated site, signing as the app:
// what reads and writes app properties.
func appClient(t *testing.T, d *demo) *jira.Client {
	t.Helper()
	inst, err := d.app.tenants.ByID(context.Background(), d.tenant)
	if err != nil {
		t.Fatal(err)
	}
	app, err := jira.New(inst.BaseURL, d.app.gate.Client("jira"), d.app.connect.AppAuth(inst))
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// property reads an app property from the simulated Jira as raw JSON; ok
// is false when it does not exist.
func property(t *testing.T, d *demo, app *jira.Client, key string) (json.RawMessage, bool) {
	t.Helper()
	var raw json.RawMessage
	err := app.GetProperty(context.Background(), d.app.cfg.AddonKey, key, &raw)
	if jira.IsStatus(err, 404) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw, true
}

// siteProperties is where Ferry keeps the site's data sources and
// settings: Connect app properties, or Forge storage on Forge.
func siteProperties(t *testing.T, d *demo) export.PropertyStore {
	t.Helper()
	ctx := context.Background()
	inst, err := d.app.tenants.ByID(ctx, d.tenant)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := d.app.platform.Properties(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// siteStored reads key from the site's storage as the simulated site
// holds it: an app property on Connect, the installation's Key-Value
// Store (the simulator's own copy) on Forge.
func siteStored(t *testing.T, d *demo, key string) (json.RawMessage, bool) {
	t.Helper()
	if d.info.Platform == "forge" {
		raw, ok := d.sim.ForgeStorage(d.sim.ForgeInstallations()[0].ID)[key]
		return raw, ok
	}
	return property(t, d, appClient(t, d), key)
}

// TestDeletedSourceDefinitionLeavesTheSitesStorage: deleting a data source
// writes its history entry, then removes its definition from the site's
// storage (the app property): what stays names it, who owned and deleted
// it and when, and holds neither its JQL nor its fields. The feed stops at
// once; administrators see the history. A tombstone written by an earlier
// version, which kept the whole definition, is retired the same way the
// first time the sources are listed.
func TestDeletedSourceDefinitionLeavesTheSitesStorage(t *testing.T) {
	onPlatforms(t, testDeletedSourceDefinitionLeavesTheSitesStorage)
}

func testDeletedSourceDefinitionLeavesTheSitesStorage(t *testing.T, platform string) {
	ctx := context.Background()
	d := startSiteOn(t, platform, nil, 20)
	admin := d.sim.Users()[0]
	page := pageFor(t, d, admin.AccountID)
	jql := `summary ~ "canary-7d1c" OR created >= "2000-01-01" ORDER BY key`
	var made struct{ ID string }
	mustAPI(t, d, page, "POST", "/app-api/sources", map[string]any{"name": "To be deleted", "jql": jql,
		"fields": []string{"summary", "customfield_10016"}, "tables": []string{"Issues"}, "visibility": "everyone"}, &made)
	if code, _, _ := fetch(t, d.info.AppURL+"/odata/"+made.ID+"/Issues?$top=1", d.info.Token); code != 200 {
		t.Fatalf("feed before deletion: %d", code)
	}
	if _, ok := siteStored(t, d, "ds."+made.ID); !ok {
		t.Fatal("the source is not stored where Ferry says")
	}
	mustAPI(t, d, page, "DELETE", "/app-api/sources/"+made.ID, nil, nil)
	if _, ok := siteStored(t, d, "ds."+made.ID); ok {
		t.Error("the deleted source's definition is still in the site's storage")
	}
	raw, ok := siteStored(t, d, "dsh."+made.ID)
	if !ok {
		t.Fatal("no history kept for the deleted source")
	}
	var gone export.DeletedSource
	json.Unmarshal(raw, &gone)
	last := gone.History[len(gone.History)-1]
	if gone.Name != "To be deleted" || gone.Owner != admin.AccountID || last.Action != "deleted" || last.By != admin.AccountID ||
		strings.Contains(string(raw), "canary-7d1c") || strings.Contains(string(raw), "customfield_10016") {
		t.Errorf("what stays of the deleted source: %s", raw)
	}
	if code, _, _ := fetch(t, d.info.AppURL+"/odata/"+made.ID+"/Issues?$top=1", d.info.Token); code != 404 {
		t.Errorf("feed after deletion: %d, want 404", code)
	}
	var deleted []struct {
		ID      string
		History []struct{ Action, By string }
	}
	mustAPI(t, d, page, "GET", "/app-api/admin/deleted-sources", nil, &deleted)
	if len(deleted) != 1 || deleted[0].ID != made.ID || deleted[0].History[0].Action != "deleted" || deleted[0].History[0].By != admin.DisplayName {
		t.Errorf("deleted sources for the admin: %+v", deleted)
	}

	// An earlier version's tombstone: the whole definition, marked deleted.
	old := export.DataSource{ID: "oldtombstone1", Name: "Old", JQL: `summary ~ "canary-9e2f"`, Fields: []string{"summary"},
		Tables: []string{"Issues"}, Deleted: true, Updated: time.Now().UTC(),
		History: []export.Change{{Action: "created", By: admin.AccountID, At: time.Now().UTC()}, {Action: "deleted", By: admin.AccountID, At: time.Now().UTC()}}}
	if err := siteProperties(t, d).Put(ctx, "ds."+old.ID, old); err != nil {
		t.Fatal(err)
	}
	var list []struct{ ID string }
	mustAPI(t, d, pageFor(t, d, d.sim.Users()[1].AccountID), "GET", "/app-api/sources", nil, &list)
	for _, s := range list {
		if s.ID == old.ID {
			t.Error("the old tombstone is listed")
		}
	}
	if _, ok := siteStored(t, d, "ds."+old.ID); ok {
		t.Error("the old tombstone's definition is still stored after listing")
	}
	if raw, ok := siteStored(t, d, "dsh."+old.ID); !ok || strings.Contains(string(raw), "canary-9e2f") {
		t.Errorf("the old tombstone's history: %s (kept: %v)", raw, ok)
	}
	reachedThroughForge(t, d, "set", "delete")
}

// TestSettingsOfEarlierVersionsAreRead: a site whose settings name the
// groups that may create data sources (creatorGroups) keeps them.
func TestSettingsOfEarlierVersionsAreRead(t *testing.T) {
	onPlatforms(t, testSettingsOfEarlierVersionsAreRead)
}

func testSettingsOfEarlierVersionsAreRead(t *testing.T, platform string) {
	d := startSiteOn(t, platform, nil, 10)
	if err := siteProperties(t, d).Put(context.Background(), "settings",
		map[string]any{"creatorGroups": []string{"jira-software-users"}, "tokenMaxDays": 30}); err != nil {
		t.Fatal(err)
	}
	var st struct {
		TokenMaxDays int
		Creators     struct {
			Everyone bool
			Groups   []string
		}
		Exporters struct{ Everyone bool }
	}
	mustAPI(t, d, pageFor(t, d, d.sim.Users()[0].AccountID), "GET", "/app-api/settings", nil, &st)
	if st.TokenMaxDays != 30 || st.Creators.Everyone || len(st.Creators.Groups) != 1 || st.Creators.Groups[0] != "jira-software-users" || !st.Exporters.Everyone {
		t.Errorf("settings read as %+v", st)
	}
	// And they take effect: a plain user (jira-software-users) may create.
	var me struct{ CanCreate, Admin bool }
	mustAPI(t, d, pageFor(t, d, d.sim.Users()[1].AccountID), "GET", "/app-api/me", nil, &me)
	if !me.CanCreate || me.Admin {
		t.Errorf("a member of jira-software-users: %+v", me)
	}
	reachedThroughForge(t, d, "get")
}

// TestTokenHistoryJobIsRegistered: `ferry jobs list` names the token
// history job and `ferry jobs run` runs it.
func TestTokenHistoryJobIsRegistered(t *testing.T) {
	vars := map[string]string{"FERRY_DATA_DIR": t.TempDir() + "/data"}
	run := func(args ...string) string {
		var out, errb strings.Builder
		if err := Run(context.Background(), append([]string{"ferry"}, args...), func(k string) string { return vars[k] }, nil, &out, &errb); err != nil {
			t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	if list := run("jobs", "list"); !strings.Contains(list, export.HistoryJobName) || !strings.Contains(list, "every 1h0m0s") {
		t.Errorf("jobs list lacks %s:\n%s", export.HistoryJobName, list)
	}
	if out := run("jobs", "run", export.HistoryJobName); !strings.Contains(out, "job "+export.HistoryJobName+" done") {
		t.Errorf("jobs run: %s", out)
	}
}

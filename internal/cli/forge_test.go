package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	forgeapp "ferry/forge"
	"ferry/internal/forge"
	"ferry/internal/jirasim"
	"ferry/internal/privacy"
	"ferry/internal/store"
	"ferry/internal/tenant"
)

// startOn runs `ferry demo` in-process with the app installed through
// platform ("forge" or "connect"), on the database dbURL names ("" for
// SQLite). Both the simulated site's clock and Ferry's can be moved on with
// the returned function.
func startOn(t *testing.T, dbURL, platform string) (*demo, func(time.Duration)) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	logs := &LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	vars := map[string]string{"FERRY_LOG_FORMAT": "json", "FERRY_LOG_LEVEL": "debug", "FERRY_DATABASE_URL": dbURL}
	d, err := startDemo(ctx, env{getenv: func(k string) string { return vars[k] }, stdout: io.Discard, stderr: logs},
		demoOptions{AppAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0", DataDir: dir, Issues: 60, Users: 6, Platform: platform})
	if err != nil {
		cancel()
		t.Fatalf("demo: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.wait(); err != nil {
			t.Errorf("demo shut down with %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	d.sim.SetClock(now)
	d.app.db.SetClock(now)
	if d.app.forge != nil {
		d.app.forge.SetClock(now)
	}
	return d, func(by time.Duration) { offset.Add(int64(by)) }
}

// feedKeys reads every page of a source's Issues feed with a token.
func feedKeys(t *testing.T, d *demo, sourceID, token string) ([]string, int, string) {
	t.Helper()
	var keys []string
	next := d.info.AppURL + "/odata/" + sourceID + "/Issues?$select=Key"
	for next != "" {
		req, _ := http.NewRequest("GET", next, nil)
		req.SetBasicAuth("bi", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return keys, resp.StatusCode, string(body)
		}
		var page struct {
			Value []struct {
				Key string `json:"Key"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Value {
			keys = append(keys, v.Key)
		}
		next = page.Next
	}
	return keys, 200, ""
}

// forgeApp is the app the demo's configuration describes, as the simulated
// platform reads it from the generated manifest.
func forgeApp(t *testing.T, d *demo) jirasim.ForgeApp {
	t.Helper()
	m, err := forge.Manifest(forgeManifestOptions(d.app.cfg))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := forgeapp.WriteApp(dir, m); err != nil {
		t.Fatal(err)
	}
	app, err := jirasim.LoadForgeManifest(filepath.Join(dir, "manifest.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// TestConnectTenantMovesToForgeKeepingSourcesAndTokens: a site installed
// through Connect, with a data source and a token, moves to the Forge app
// (same app.connect.key). The Connect callback brings the installationId
// with the clientKey and the Forge side an upgraded event; the tenant stays
// the same — keys, shared secret, tokens — its data source appears in Forge
// storage, and the token's feed answers exactly as before, now read through
// offline impersonation.
func TestConnectTenantMovesToForgeKeepingSourcesAndTokens(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		d, advance := startOn(t, dbURL, "connect")
		before, err := d.app.tenants.ByID(ctx, d.tenant)
		if err != nil || !before.Connect || before.InstallationID != "" {
			t.Fatalf("a Connect tenant: %+v %v", before, err)
		}
		secret, _ := d.app.tenants.SharedSecret(ctx, d.tenant)
		keys0, status, body := feedKeys(t, d, d.info.SourceID, d.info.Token)
		if status != 200 || len(keys0) == 0 {
			t.Fatalf("feed before the move: %d %s", status, body)
		}
		tokens0, _ := d.app.appAPI.Tokens.CountTenant(ctx, d.tenant)

		// Connect lifecycle tokens carry whole seconds: the second installed
		// callback must not be signed in the first one's second.
		advance(1100 * time.Millisecond)
		fi, err := d.sim.MigrateConnectToForge(ctx, forgeApp(t, d))
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
		after, err := d.app.tenants.ByID(ctx, d.tenant)
		if err != nil || after.InstallationID != fi.ID || !after.OnForge() || after.ClientKey != before.ClientKey {
			t.Fatalf("after the move the same tenant has the Forge installation: %+v %v", after, err)
		}
		all, _ := d.app.tenants.All(ctx)
		if len(all) != 1 {
			t.Fatalf("one tenant per site: %d", len(all))
		}
		// The move of the data sources is queued by the first Forge contact;
		// the job runner does it. Wait for its mark, or run it as an
		// operator would.
		deadline := time.Now().Add(10 * time.Second)
		for after.ForgeMigratedAt.IsZero() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			after, _ = d.app.tenants.ByID(ctx, d.tenant)
		}
		if after.ForgeMigratedAt.IsZero() {
			if err := d.app.jobs.RunOnce(ctx, forge.MigrateJobName); err != nil {
				t.Fatal(err)
			}
			after, _ = d.app.tenants.ByID(ctx, d.tenant)
		}
		if !after.SourcesInForge() {
			t.Fatalf("the data sources must be in Forge storage now: %+v", after)
		}
		stored := d.sim.ForgeStorage(fi.ID)
		raw, ok := stored["ds."+d.info.SourceID]
		if !ok {
			t.Fatalf("Forge storage holds %v; want the data source ds.%s", slices.Collect(func(yield func(string) bool) {
				for k := range stored {
					if !yield(k) {
						return
					}
				}
			}), d.info.SourceID)
		}
		var ds struct{ ID, JQL string }
		json.Unmarshal(raw, &ds)
		if ds.ID != d.info.SourceID || ds.JQL != demoJQL {
			t.Errorf("the moved definition: %s", raw)
		}
		if s2, _ := d.app.tenants.SharedSecret(ctx, d.tenant); !bytes.Equal(s2, secret) {
			t.Error("the Connect shared secret must stay")
		}
		if n, _ := d.app.appAPI.Tokens.CountTenant(ctx, d.tenant); n != tokens0 {
			t.Errorf("tokens: %d, want %d", n, tokens0)
		}
		d.sim.ResetForgeStats()
		keys1, status, body := feedKeys(t, d, d.info.SourceID, d.info.Token)
		if status != 200 || !slices.Equal(keys1, keys0) {
			t.Fatalf("the same token's feed after the move: %d %s; %d rows, want the %d from before", status, body, len(keys1), len(keys0))
		}
		admin := d.sim.Users()[0].AccountID
		if st := d.sim.ForgeStats(); st.Impersonations[admin] == 0 || st.StorageCalls["get"] == 0 {
			t.Errorf("after the move the feed reads through Forge (impersonation, storage): %+v", st)
		}
	})
}

// tableDump is every row of the tables a Forge invocation could touch.
func tableDump(t *testing.T, db *store.DB) string {
	t.Helper()
	var b bytes.Buffer
	for _, table := range []string{"installations", "seen_tokens", "tenant_keys", "access_tokens", "privacy_accounts"} {
		rows, err := db.SQL.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprint(vals...))
		}
		rows.Close()
		slices.Sort(lines)
		fmt.Fprintf(&b, "%s\n%s\n", table, strings.Join(lines, "\n"))
	}
	return b.String()
}

// TestFITAttacksFromTheSimulatorChangeNothing sends Ferry every broken
// invocation the simulated Forge can make — wrong aud, a token for another
// app with that app's id as aud, expired, nbf in the future, unknown kid,
// alg none, HS256, wrong iss, tampered claims, missing trace headers,
// missing kid — to the trigger, the lifecycle endpoint, preUninstall and the
// Custom UI's API, and a genuine one twice: each is refused and the
// database is exactly what it was.
func TestFITAttacksFromTheSimulatorChangeNothing(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		d, _ := startOn(t, dbURL, "forge")
		inst := d.sim.ForgeInstallations()[0].ID
		admin := d.sim.Users()[0].AccountID
		calls := []jirasim.ForgeCall{
			{Kind: "scheduledTrigger", Endpoint: forge.EndpointTrigger, Module: "ferry-hourly", Body: map[string]any{}},
			{Kind: "event", Endpoint: forge.EndpointLifecycle, Module: forge.ModuleDataSources, Body: map[string]any{"id": inst, "eventType": "avi:forge:upgraded:app"}},
			{Kind: "preUninstall", Endpoint: forge.EndpointUninstall, Module: "ferry-pre-uninstall", Body: map[string]any{}},
			{Kind: "ui", Module: forge.ModuleDataSources, Method: "GET", Path: forge.RouteAPI + "/tokens", AccountID: admin},
			{Kind: "ui", Module: forge.ModuleAdmin, Method: "POST", Path: forge.RouteAPI + "/tokens", AccountID: admin, Body: map[string]any{"label": "attacker", "days": 1}},
		}
		send := func(req *http.Request) (int, string) {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		// A genuine invocation works; sent again, it is a replay.
		for _, c := range calls[:1] {
			req, err := d.sim.NewForgeRequest(ctx, inst, c)
			if err != nil {
				t.Fatal(err)
			}
			if status, body := send(req); status != 200 {
				t.Fatalf("genuine %s: %d %s", c.Kind, status, body)
			}
			before := tableDump(t, d.app.db)
			again := req.Clone(ctx)
			again.Body, _ = req.GetBody()
			if status, body := send(again); status != 401 || !strings.Contains(body, "used before") {
				t.Errorf("replayed %s: %d %s", c.Kind, status, body)
			}
			if tableDump(t, d.app.db) != before {
				t.Fatalf("a replayed %s changed the database", c.Kind)
			}
		}
		before := tableDump(t, d.app.db)
		for _, v := range jirasim.FITVariants() {
			if v == jirasim.FITValid {
				continue
			}
			for _, c := range calls {
				c.Variant = v
				req, err := d.sim.NewForgeRequest(ctx, inst, c)
				if err != nil {
					t.Fatal(err)
				}
				status, body := send(req)
				refused := status == 401 || (v == jirasim.FITUnknownKeyID && status == 503)
				if !refused {
					t.Errorf("%s on %s %s: %d %.200s", v, c.Kind, c.Path, status, body)
				}
				if after := tableDump(t, d.app.db); after != before {
					t.Fatalf("%s on %s %s changed the database", v, c.Kind, c.Path)
				}
			}
		}
	})
}

func tokenAge(t *testing.T, tenantID string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ferry_forge_system_token_age_seconds" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "tenant" && l.GetValue() == tenantID {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
	}
	t.Fatalf("no ferry_forge_system_token_age_seconds for %s", tenantID)
	return 0
}

// TestWhenTheTriggerStopsFeedsSay503AndTheNextTriggerHeals: Forge stops
// invoking the app; once the system token has outlived its lifetime the
// feed answers the clear 503 naming the hours, the metric shows the age,
// and the next trigger heals it without a restart.
func TestWhenTheTriggerStopsFeedsSay503AndTheNextTriggerHeals(t *testing.T) {
	ctx := context.Background()
	d, advance := startOn(t, "", "forge")
	inst := d.sim.ForgeInstallations()[0].ID
	if err := d.sim.FireForgeTrigger(ctx, inst); err != nil {
		t.Fatal(err)
	}
	keys0, status, body := feedKeys(t, d, d.info.SourceID, d.info.Token)
	if status != 200 || len(keys0) == 0 {
		t.Fatalf("feed: %d %s", status, body)
	}
	if err := d.sim.StopForgeTriggers(inst); err != nil {
		t.Fatal(err)
	}
	advance(time.Hour)
	if err := d.sim.FireForgeTrigger(ctx, inst); err == nil {
		t.Fatal("a stopped trigger must deliver nothing")
	}
	if _, status, body := feedKeys(t, d, d.info.SourceID, d.info.Token); status != 200 {
		t.Fatalf("an hour on, the trigger's token (≥ 2 h) still lives: %d %s", status, body)
	}
	advance(2 * time.Hour)
	_, status, body = feedKeys(t, d, d.info.SourceID, d.info.Token)
	if status != 503 || !strings.Contains(body, "has not been reached by Jira for 3 hours") {
		t.Fatalf("three hours without a trigger: %d %s", status, body)
	}
	if age := tokenAge(t, d.tenant); age < 3*3600 {
		t.Errorf("ferry_forge_system_token_age_seconds = %v; want ≥ 10800", age)
	}
	if err := d.sim.ResumeForgeTriggers(inst); err != nil {
		t.Fatal(err)
	}
	if err := d.sim.FireForgeTrigger(ctx, inst); err != nil {
		t.Fatal(err)
	}
	keys1, status, body := feedKeys(t, d, d.info.SourceID, d.info.Token)
	if status != 200 || !slices.Equal(keys1, keys0) {
		t.Fatalf("after the next trigger: %d %s", status, body)
	}
	if age := tokenAge(t, d.tenant); age > 60 {
		t.Errorf("after the trigger the age must drop: %v", age)
	}
	in, _ := d.app.tenants.ByID(ctx, d.tenant)
	if in.State != tenant.Active {
		t.Errorf("the tenant: %+v", in)
	}
}

// TestPersonalDataReportingDoesNotFailOnAForgeOnlySite: Atlassian's
// report-accounts API is Connect's (signed with a site's shared secret), so
// a Forge-only site's accounts can only be reported through a site
// installed through Connect; with none, the job skips them and stays
// healthy rather than failing every hour.
func TestPersonalDataReportingDoesNotFailOnAForgeOnlySite(t *testing.T) {
	ctx := context.Background()
	d, _ := startOn(t, "", "forge")
	if n, _ := d.app.accounts.CountTenant(ctx, d.tenant); n == 0 {
		t.Fatal("the demo's token owner must be held for reporting")
	}
	if err := d.app.jobs.RunOnce(ctx, privacy.ReportJobName); err != nil {
		t.Fatalf("the reporting job on a Forge-only site: %v", err)
	}
	if n, _ := d.app.accounts.CountTenant(ctx, d.tenant); n == 0 {
		t.Fatal("an account that could not be reported must stay held")
	}
}

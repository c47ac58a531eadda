package forge_test

import (
	"context"
	"encoding/json"
	"testing"

	"ferry/internal/forge"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

// TestMigrationCopiesConnectDataSourcesOnceAndNeverOverwrites: a Connect
// site reached through Forge moves its data sources, deleted sources'
// history and settings from
// Connect app properties into Forge storage; a value already in Forge
// storage is kept; other properties stay where they are; the tenant is then
// served from Forge storage.
func TestMigrationCopiesConnectDataSourcesOnceAndNeverOverwrites(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		g := newRig(t, db)
		ctx := context.Background()
		in := tenant.Install{AddonKey: "ferry-bi-connector", ProductType: "jira", ClientKey: "ck-1", BaseURL: "https://example.atlassian.net",
			SharedSecret: []byte("secret-number-one-0123456789abcdef"), CloudID: cloudID}
		conn, _, err := g.tenants.Install(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		g.fake.mu.Lock()
		g.fake.connectProp["ds.alpha"] = json.RawMessage(`{"id":"alpha","name":"Alpha"}`)
		g.fake.connectProp["ds.beta"] = json.RawMessage(`{"id":"beta","name":"Beta (Connect)"}`)
		g.fake.connectProp["settings"] = json.RawMessage(`{"creatorGroups":["analysts"],"tokenMaxDays":30}`)
		g.fake.connectProp["dsh.gamma"] = json.RawMessage(`{"id":"gamma","name":"Gamma","history":[{"action":"deleted"}]}`)
		g.fake.connectProp["unrelated"] = json.RawMessage(`{"x":1}`)
		g.fake.storage["ds.beta"] = json.RawMessage(`{"id":"beta","name":"Beta (already in Forge)"}`)
		g.fake.mu.Unlock()
		kicked := 0
		g.remote.SetKick(func(context.Context) error { kicked++; return nil })

		g.trigger(t) // the first Forge contact links the Connect tenant and queues the move
		inst, _ := g.tenants.ByID(ctx, conn.TenantID)
		if inst.InstallationID != instID || inst.SourcesInForge() || kicked != 1 {
			t.Fatalf("after the first contact: %+v kicked=%d", inst, kicked)
		}
		pending, _ := g.tenants.PendingMigration(ctx)
		if len(pending) != 1 {
			t.Fatalf("pending migrations: %d", len(pending))
		}
		if err := forge.MigrateJob(g.remote, nil).Run(ctx); err != nil {
			t.Fatal(err)
		}
		g.fake.mu.Lock()
		got := map[string]string{}
		for k, v := range g.fake.storage {
			got[k] = string(v)
		}
		g.fake.mu.Unlock()
		want := map[string]string{
			"ds.alpha": `{"id":"alpha","name":"Alpha"}`,
			"ds.beta":  `{"id":"beta","name":"Beta (already in Forge)"}`,
			"settings": `{"creatorGroups":["analysts"],"tokenMaxDays":30}`,
			// What stays of a deleted source: its history, for administrators.
			"dsh.gamma": `{"id":"gamma","name":"Gamma","history":[{"action":"deleted"}]}`,
		}
		if len(got) != len(want) {
			t.Fatalf("Forge storage after the move: %v", got)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %s; want %s", k, got[k], v)
			}
		}
		inst, _ = g.tenants.ByID(ctx, conn.TenantID)
		if !inst.SourcesInForge() {
			t.Fatal("after the move the tenant's sources live in Forge storage")
		}
		if pending, _ := g.tenants.PendingMigration(ctx); len(pending) != 0 {
			t.Fatal("a moved tenant is not moved again")
		}
		if secret, err := g.tenants.SharedSecret(ctx, conn.TenantID); err != nil || string(secret) != "secret-number-one-0123456789abcdef" {
			t.Fatal("the Connect identity stays")
		}
	})
}

// TestStorageIsAPropertyStore: keys by prefix, get, put, delete, through
// the Key-Value Store REST API with the system token.
func TestStorageIsAPropertyStore(t *testing.T) {
	g := newRig(t, storetest.SQLite(t))
	ctx := context.Background()
	g.trigger(t)
	inst, _ := g.tenants.ByInstallationID(ctx, instID)
	s, err := g.remote.Storage(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ds.one", "ds.two", "settings"} {
		if err := s.Put(ctx, k, map[string]string{"k": k}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.Keys(ctx, "ds.")
	if err != nil || len(keys) != 2 {
		t.Fatalf("Keys(ds.) = %v, %v", keys, err)
	}
	var v map[string]string
	if found, err := s.Get(ctx, "ds.two", &v); !found || err != nil || v["k"] != "ds.two" {
		t.Fatalf("Get = %v %v %v", found, err, v)
	}
	if found, err := s.Get(ctx, "ds.none", &v); found || err != nil {
		t.Fatalf("Get of a missing key = %v %v", found, err)
	}
	if err := s.Delete(ctx, "ds.one"); err != nil {
		t.Fatal(err)
	}
	if found, _ := s.Get(ctx, "ds.one", &v); found {
		t.Fatal("deleted")
	}
}

package forge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry/internal/apperr"
	"ferry/internal/forge"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

func tokenAgeMetric(t *testing.T, tenantID string) (float64, bool) {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_forge_system_token_age_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == tenantID {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestOfflineReadsActAsTheUserAndStopCleanlyWhenTheTriggerStops: with no
// invocation in flight, Ferry reads Jira as a user through offline
// impersonation with the system token the trigger left; the impersonation
// token is cached until shortly before its ttl; once the system token has
// outlived its lifetime the answer is the clear 503 naming the hours and
// the metric shows the age; the next trigger heals it without a restart.
func TestOfflineReadsActAsTheUserAndStopCleanlyWhenTheTriggerStops(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		g := newRig(t, db)
		ctx := context.Background()
		if _, err := g.remote.UserClient(ctx, tenant.Installation{TenantID: "ten_x", InstallationID: instID, APIBaseURL: g.fake.apiBase()}, userA); err == nil {
			t.Fatal("a tenant Forge never reached has no system token to act with")
		}
		sys := g.trigger(t)
		inst, err := g.tenants.ByInstallationID(ctx, instID)
		if err != nil {
			t.Fatal(err)
		}
		var ct []byte
		db.SQL.QueryRow(`SELECT forge_system_token FROM installations WHERE tenant_id = $1`, inst.TenantID).Scan(&ct)
		if bytes.Contains(ct, []byte(sys)) || len(ct) == 0 {
			t.Fatal("the system token must be stored sealed")
		}
		if !inst.OnForge() || inst.WorkspaceARI != "ari:cloud:jira:"+cloudID+":workspace/ws-1" {
			t.Fatalf("installation after the trigger: %+v", inst)
		}
		me := func(account string) (string, error) {
			c, err := g.remote.UserClient(ctx, inst, account)
			if err != nil {
				return "", err
			}
			u, err := c.Myself(ctx)
			return u.AccountID, err
		}
		for range 3 {
			got, err := me(userA)
			if err != nil || got != userA {
				t.Fatalf("read as %s: got %q, %v", userA, got, err)
			}
		}
		if got, err := me(userB); err != nil || got != userB {
			t.Fatalf("read as %s: got %q, %v", userB, got, err)
		}
		g.fake.mu.Lock()
		exA, exB, ctxIDs := g.fake.exchanges[userA], g.fake.exchanges[userB], g.fake.lastContext
		g.fake.mu.Unlock()
		if exA != 1 || exB != 1 {
			t.Fatalf("offline tokens must be cached per user: exchanges A=%d B=%d", exA, exB)
		}
		if len(ctxIDs) != 1 || ctxIDs[0] != inst.WorkspaceARI {
			t.Fatalf("contextIds = %v; want the installation's workspace ARI", ctxIDs)
		}
		// Shortly before the offline token's ttl (15 min, renewed 60 s
		// early) a new one is fetched.
		g.clock.Add(13 * time.Minute)
		me(userA)
		g.clock.Add(90 * time.Second)
		me(userA)
		g.fake.mu.Lock()
		exA = g.fake.exchanges[userA]
		g.fake.mu.Unlock()
		if exA != 2 {
			t.Fatalf("after 14.5 of 15 minutes the token must be renewed once: %d exchanges", exA)
		}

		// The trigger stops. The token lives two hours (its exp); an hour
		// later it still works, past two hours feeds get the clear 503.
		g.clock.Add(60 * time.Minute)
		if _, err := me(userA); err != nil {
			t.Fatalf("at 75 minutes the system token still lives: %v", err)
		}
		g.clock.Add(50 * time.Minute)
		_, err = g.remote.UserClient(ctx, inst, userB)
		p := apperr.ProblemOf(err)
		if p.Status != 503 || !strings.Contains(p.Detail, "has not been reached by Jira for 2 hours") {
			t.Fatalf("past its lifetime: %d %q", p.Status, p.Detail)
		}
		if err := g.remote.RequireLicense(ctx, inst); apperr.ProblemOf(err).Status != 503 {
			t.Fatalf("RequireLicense must give the same 503: %v", err)
		}
		if age, ok := tokenAgeMetric(t, inst.TenantID); !ok || age < 2*3600 {
			t.Fatalf("ferry_forge_system_token_age_seconds = %v, %v; want ≥ 7200", age, ok)
		}
		// The next trigger heals it, with no restart.
		g.trigger(t)
		inst, _ = g.tenants.ByInstallationID(ctx, instID)
		if got, err := me(userB); err != nil || got != userB {
			t.Fatalf("after the next trigger: %q, %v", got, err)
		}
		if age, _ := tokenAgeMetric(t, inst.TenantID); age > 60 {
			t.Fatalf("after the trigger the metric must drop: %v", age)
		}
		// Atlassian refuses a service account: a clear 403 with its reason.
		g.fake.mu.Lock()
		g.fake.refuse[userB] = "Service accounts cannot be impersonated"
		g.fake.mu.Unlock()
		g.remote.Forget(inst.TenantID)
		_, err = me(userB)
		p = apperr.ProblemOf(err)
		if p.Status != 403 || !strings.Contains(p.Detail, "Service accounts cannot be impersonated") {
			t.Fatalf("refused impersonation: %d %q", p.Status, p.Detail)
		}
	})
}

// TestUIInvocationsUseTheirOwnUserToken: while the user is in session the
// invocation's user token is used, not impersonation.
func TestUIInvocationsUseTheirOwnUserToken(t *testing.T) {
	g := newRig(t, storetest.SQLite(t))
	g.trigger(t)
	userTok := g.fake.token("user:" + userA)
	var got string
	h := g.remote.RequireUI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := forge.From(r.Context())
		cl, err := g.remote.UserClient(r.Context(), c.Installation, c.Invocation.Principal)
		if err != nil {
			t.Fatal(err)
		}
		u, err := cl.Myself(r.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = u.DisplayName
		json.NewEncoder(w).Encode(map[string]string{"pseudonym": c.Pseudonym})
	}))
	w := g.serve(h, request("GET", forge.RouteAPI+"/me", g.fake.sign(g.fake.newFIT(userA), nil), nil,
		map[string]string{"x-forge-oauth-user": userTok, "x-forge-oauth-system": g.fake.token("system")}))
	if w.Code != 200 || got != "user:"+userA {
		t.Fatalf("UI call: %d %s; read as %q", w.Code, w.Body, got)
	}
	if strings.Contains(w.Body.String(), userA) {
		t.Fatal("the handler sees a pseudonym, not the accountId, for logs")
	}
	g.fake.mu.Lock()
	defer g.fake.mu.Unlock()
	if g.fake.exchanges[userA] != 0 {
		t.Fatal("a user in session must not be impersonated")
	}
}

// TestPreUninstallEndsTheTenantLikeAConnectUninstall: marked pending
// deletion with purge_after = now + grace, its jti used up with the change;
// later invocations change nothing.
func TestPreUninstallEndsTheTenantLikeAConnectUninstall(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		g := newRig(t, db)
		ctx := context.Background()
		g.trigger(t)
		tok := g.fake.sign(g.fake.newFIT(""), nil)
		w := g.serve(g.remote.HandlePreUninstall(), request("POST", forge.RoutePreUninstall, tok, map[string]any{}, nil))
		if w.Code != 200 {
			t.Fatalf("preUninstall: %d %s", w.Code, w.Body)
		}
		inst, _ := g.tenants.ByInstallationID(ctx, instID)
		if inst.State != tenant.PendingDeletion || inst.DeletionCause != tenant.CauseUninstalled ||
			!inst.PurgeAfter.Equal(g.clock.Now().Add(g.tenants.Policy().Grace)) {
			t.Fatalf("after preUninstall: %+v", inst)
		}
		before := snapshot(t, db)
		if w := g.serve(g.remote.HandlePreUninstall(), request("POST", forge.RoutePreUninstall, tok, map[string]any{}, nil)); w.Code != 401 {
			t.Fatalf("a replayed preUninstall: %d", w.Code)
		}
		if w := g.serve(g.remote.HandleTrigger(), request("POST", forge.RouteTrigger, g.fake.sign(g.fake.newFIT(""), nil), map[string]any{},
			map[string]string{"x-forge-oauth-system": g.fake.token("system")})); w.Code != 200 {
			t.Fatalf("a late trigger: %d", w.Code)
		}
		if after := snapshot(t, db); after != before {
			t.Fatal("invocations after preUninstall changed the tenant")
		}
	})
}

// TestLifecycleEventsAnswerAtOnceAndRefuseAPayloadForAnotherInstallation.
func TestLifecycleEventsAnswerAtOnceAndRefuseAPayloadForAnotherInstallation(t *testing.T) {
	db := storetest.SQLite(t)
	g := newRig(t, db)
	before := snapshot(t, db)
	w := g.serve(g.remote.HandleLifecycle(), request("POST", forge.RouteLifecycle, g.fake.sign(g.fake.newFIT(""), nil),
		map[string]any{"id": "ari:cloud:ecosystem::installation/00000000-0000-4000-8000-000000000999", "eventType": "avi:forge:installed:app"},
		map[string]string{"x-forge-oauth-system": g.fake.token("system")}))
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"field":"id"`) {
		t.Fatalf("payload for another installation: %d %s", w.Code, w.Body)
	}
	if snapshot(t, db) != before {
		t.Fatal("a refused lifecycle event changed the database")
	}
	w = g.serve(g.remote.HandleLifecycle(), request("POST", forge.RouteLifecycle, g.fake.sign(g.fake.newFIT(""), nil),
		map[string]any{"id": instID, "eventType": "avi:forge:installed:app", "installerAccountId": userA},
		map[string]string{"x-forge-oauth-system": g.fake.token("system")}))
	if w.Code != 200 {
		t.Fatalf("installed: %d %s", w.Code, w.Body)
	}
	inst, err := g.tenants.ByInstallationID(context.Background(), instID)
	if err != nil || inst.Connect || inst.State != tenant.Active || inst.ForgeLicense != tenant.LicenseActive {
		t.Fatalf("after installed: %+v %v", inst, err)
	}
	var dump bytes.Buffer
	rows, _ := db.SQL.Query(`SELECT * FROM installations`)
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		rows.Scan(ptrs...)
		json.NewEncoder(&dump).Encode(vals)
	}
	rows.Close()
	if strings.Contains(dump.String(), userA) || strings.Contains(dump.String(), "557058") {
		t.Fatal("the installer's accountId from the payload must not be stored")
	}
}

package cli

import (
	"context"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jira"
)

// TestDataSourceCacheRefreshesInTheBackground: a data source read longer
// ago than the cache's lifetime is answered from memory at once, and Jira
// is asked again in the background; a change made through the same Sources
// is seen at once.
func TestDataSourceCacheRefreshesInTheBackground(t *testing.T) {
	d, _, _ := startTestDemo(t, 20)
	ctx := context.Background()
	tn, err := d.app.tenants.ByID(ctx, d.tenant)
	if err != nil {
		t.Fatal(err)
	}
	app, err := jira.New(tn.BaseURL, d.app.gate.Client("jira"), d.app.connect.AppAuth(tn))
	if err != nil {
		t.Fatal(err)
	}
	props := export.AppProperties{Client: app, AddonKey: d.app.cfg.AddonKey}
	src := &export.Sources{TTL: 20 * time.Millisecond}
	id := d.info.SourceID
	first, err := src.Get(ctx, props, d.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	const ep = "GET /rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}"
	reads := func() int64 { return d.sim.Stats().Requests[ep] }
	time.Sleep(50 * time.Millisecond) // past the lifetime
	before := reads()
	again, err := src.Get(ctx, props, d.tenant, id)
	if err != nil || again.Name != first.Name {
		t.Fatalf("stale answer: %+v %v", again, err)
	}
	// The refresh runs behind the answer: wait for Jira to be asked.
	deadline := time.Now().Add(10 * time.Second)
	for reads() == before {
		if time.Now().After(deadline) {
			t.Fatal("the entry was not refreshed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A change through this Sources is seen by the next read.
	upd, err := src.Update(ctx, props, d.tenant, id, export.Input{Name: "Renamed", JQL: first.JQL, Fields: first.Fields, Tables: first.Tables}, d.sim.Users()[0].AccountID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := src.Get(ctx, props, d.tenant, id); got.Name != "Renamed" || !got.Updated.Equal(upd.Updated) {
		t.Fatalf("after the change: %+v", got)
	}
}

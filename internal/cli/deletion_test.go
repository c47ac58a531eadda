package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"ferry/internal/audit"
	"ferry/internal/tenant"
)

// deletionInTrail finds the audit trail's record of a tenant's deletion,
// named by the pseudonym the trail gave the tenant before it was shredded.
func deletionInTrail(t *testing.T, a *app, pseudonym string) audit.Record {
	t.Helper()
	rows, err := a.trail.List(context.Background(), audit.Filter{TenantPseudonym: pseudonym})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Action == "tenant.delete" {
			return r
		}
	}
	t.Fatalf("no tenant.delete row in the audit trail for %s: %+v", pseudonym, rows)
	return audit.Record{}
}

var tokenMeta = regexp.MustCompile(`<meta name="ferry-token" content="([^"]+)">`)

// pageToken opens the admin page as accountID through the simulated Jira's
// signed iframe URL and returns the context token it embeds for its API.
func pageToken(t *testing.T, d *demo, accountID string) string {
	t.Helper()
	u, err := d.sim.PageURL(d.app.cfg.AddonKey, "admin", accountID)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := fetch(t, u, "")
	m := tokenMeta.FindSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("admin page: %d %.300s", code, body)
	}
	return string(m[1])
}

func callAPI(t *testing.T, d *demo, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			b = []byte(s)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.info.AppURL+path, rd)
	req.Header.Set("Authorization", "JWT "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitPurged waits for the tenant's deletion record to be finished: the
// purge, asked for through the job queue, has run.
func waitPurged(t *testing.T, a *app, tenantID string) tenant.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if rec, err := a.purger.Deletion(context.Background(), tenantID); err == nil && !rec.FinishedAt.IsZero() {
			return rec
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the purge did not run within 30 s of the request")
	return tenant.Record{}
}

// TestImmediateDeletionFromTheAdminPageAPI: only a Jira administrator may
// ask, only by typing the site's host name; anything else changes nothing.
// Once asked, the app behaves as uninstalled at once, and the purge runs by
// itself within moments (the request asks the job queue for it).
func TestImmediateDeletionFromTheAdminPageAPI(t *testing.T) {
	ctx := context.Background()
	d, _, _ := startStack(t, "", 0)
	a, id := d.app, d.tenant
	users := d.sim.Users()
	admin, other := pageToken(t, d, users[0].AccountID), pageToken(t, d, users[1].AccountID)
	host := tenant.SiteHost(mustInstallation(t, d).BaseURL)
	counts := func() string {
		c, _ := a.purger.Counts(ctx, id)
		delete(c, "request log entries") // refused requests are logged, as every request is
		return fmt.Sprint(c)
	}
	before := counts()

	if code, out := callAPI(t, d, "GET", "/app-api/deletion", admin, nil); code != 200 || out["siteHost"] != host {
		t.Fatalf("GET deletion as admin: %d %v", code, out)
	}
	for _, c := range []struct {
		name, token string
		body        any
		status      int
		field       string
	}{
		{"not an administrator", other, map[string]string{"siteHost": host}, 403, ""},
		{"wrong host", admin, map[string]string{"siteHost": "other.atlassian.net"}, 400, "siteHost"},
		{"empty host", admin, map[string]string{"siteHost": ""}, 400, "siteHost"},
		{"host with a path", admin, map[string]string{"siteHost": host + "/"}, 400, "siteHost"},
		{"unknown field", admin, map[string]string{"siteHost": host, "now": "yes"}, 400, "body"},
		{"not JSON", admin, "{", 400, "body"},
	} {
		code, out := callAPI(t, d, "POST", "/app-api/deletion", c.token, c.body)
		field, _ := out["field"].(string) // RFC 9457 problem+json with Ferry's field member
		if code != c.status || field != c.field {
			t.Errorf("%s: %d %v, want %d naming %q", c.name, code, out, c.status, c.field)
		}
	}
	if after := counts(); after != before {
		t.Fatalf("refused requests changed what is stored: %s → %s", before, after)
	}
	if in, _ := a.tenants.ByID(ctx, id); in.State != tenant.Active {
		t.Fatalf("refused requests changed the state: %s", in.State)
	}

	named, _ := a.trail.TenantPseudonym(ctx, id)
	code, out := callAPI(t, d, "POST", "/app-api/deletion", admin, map[string]string{"siteHost": strings.ToUpper(host)})
	if code != 202 {
		t.Fatalf("deletion request: %d %v", code, out)
	}
	// At once: pages and feeds as for an uninstalled app.
	u, _ := d.sim.PageURL(a.cfg.AddonKey, "data-sources", users[0].AccountID)
	if code, _, _ := fetch(t, u, ""); code != 403 && code != 401 {
		t.Errorf("app page right after the request: %d", code)
	}
	if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", d.info.Token); code != 403 && code != 401 {
		t.Errorf("feed right after the request: %d", code)
	}
	rec := waitPurged(t, a, id)
	if rec.Cause != tenant.CauseSiteAdmin || rec.CountsBefore["access tokens"] != 1 {
		t.Fatalf("deletion record %+v", rec)
	}
	if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", d.info.Token); code != 401 {
		t.Errorf("feed after the purge: %d, want 401", code)
	}
	adminPseudonym, _ := a.keys.Pseudonym(ctx, id, users[0].AccountID) // fails now: the keys are shredded
	row := deletionInTrail(t, a, named)
	if !strings.HasPrefix(row.Actor, "jira:") || row.Outcome != audit.Allowed || row.Object != string(tenant.CauseSiteAdmin) ||
		strings.Contains(row.Actor, users[0].AccountID) || adminPseudonym != "" {
		t.Errorf("audit row %+v (the administrator only by a pseudonym nobody can compute after the purge)", row)
	}
	if now, _ := a.trail.TenantPseudonym(ctx, id); now != "shredded" {
		t.Errorf("after the purge the trail names the tenant %q, want shredded", now)
	}
}

// TestTenantsCommandListsShowsAndDeletesWithAReason: an operator deletes a
// tenant at once with `ferry tenants delete`; without a reason, with a short
// one, or for an unknown tenant nothing changes; the reason and the
// operator are in the deletion record.
func TestTenantsCommandListsShowsAndDeletesWithAReason(t *testing.T) {
	ctx := context.Background()
	d, dir, _ := startStack(t, "", 0)
	a, id := d.app, d.tenant
	vars := map[string]string{"FERRY_DATA_DIR": dir, "USER": "ana"}
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := Run(ctx, append([]string{"ferry", "tenants"}, args...), func(k string) string { return vars[k] }, nil, &out, &errb)
		return out.String(), errb.String(), err
	}
	out, _, err := run("list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "active") {
		t.Fatalf("tenants list: %v\n%s", err, out)
	}
	out, _, err = run("show", "--tenant", id)
	if err != nil || !strings.Contains(out, "access tokens") || !strings.Contains(out, "state") {
		t.Fatalf("tenants show: %v\n%s", err, out)
	}
	counts := func() string { c, _ := a.purger.Counts(ctx, id); return fmt.Sprint(c) }
	before := counts()
	for _, c := range []struct {
		args []string
		exit int
		says string
	}{
		{[]string{"delete", "--tenant", id}, 2, "--reason"},
		{[]string{"delete", "--tenant", id, "--reason", "asked"}, 2, "at least 10"},
		{[]string{"delete", "--reason", "customer ticket 4711"}, 2, "--tenant"},
		{[]string{"delete", "--tenant", "ten_nobody", "--reason", "customer ticket 4711"}, 1, "no installation"},
		{[]string{"purge"}, 2, "unknown tenants command"},
	} {
		_, _, err := run(c.args...)
		if err == nil || ExitCode(err) != c.exit || !strings.Contains(err.Error(), c.says) {
			t.Errorf("tenants %v: %v (exit %d), want exit %d saying %q", c.args, err, ExitCode(err), c.exit, c.says)
		}
	}
	if after := counts(); after != before {
		t.Fatalf("refused commands changed what is stored: %s → %s", before, after)
	}
	named, _ := a.trail.TenantPseudonym(ctx, id)
	out, _, err = run("delete", "--tenant", id, "--reason", "customer ticket 4711: delete now")
	if err != nil || !strings.Contains(out, "deleted") || !strings.Contains(out, "access tokens") {
		t.Fatalf("tenants delete: %v\n%s", err, out)
	}
	rec, err := a.purger.Deletion(ctx, id)
	if err != nil || rec.FinishedAt.IsZero() || rec.Cause != tenant.CauseOperator || rec.Reason != "customer ticket 4711: delete now" || rec.RequestedBy != "ana" {
		t.Fatalf("deletion record %+v %v", rec, err)
	}
	if code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", d.info.Token); code != 401 {
		t.Errorf("feed after the operator's deletion: %d, want 401", code)
	}
	if row := deletionInTrail(t, a, named); row.Actor != "cli:ana" || row.Reason != "customer ticket 4711: delete now" {
		t.Errorf("audit row %+v", row)
	}
	out, _, _ = run("list")
	if !strings.Contains(out, id) || !strings.Contains(out, "purged") {
		t.Errorf("tenants list after the purge:\n%s", out)
	}
	out, _, err = run("delete", "--tenant", id, "--reason", "customer ticket 4711: again")
	if err != nil || !strings.Contains(out, "already purged") {
		t.Errorf("deleting twice: %v\n%s", err, out)
	}
}

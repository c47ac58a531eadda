package console_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"ferry/internal/backup"
	"ferry/internal/staff"
	"ferry/internal/store/storetest"
)

var backupRowRE = regexp.MustCompile(`<tr data-id="([^"]+)" data-state="([^"]+)"><td>.*?</td><td>.*?</td>\s*<td><span class="tag backup-([a-z]+)">`)

// backupRows reads the backups table: id → class shown, and the row's text.
func backupRows(body string) (map[string]string, map[string]string) {
	class, text := map[string]string{}, map[string]string{}
	table := body[strings.Index(body, `<table id="backups">`):]
	table = table[:strings.Index(table, "</table>")]
	for _, row := range strings.Split(table, "</tr>") {
		if m := backupRowRE.FindStringSubmatch(row); m != nil {
			class[m[1]], text[m[1]] = m[3], row
		}
	}
	return class, text
}

func object(t *testing.T, tg backup.Target, name string) []byte {
	t.Helper()
	r, err := tg.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return b
}

func put(t *testing.T, tg backup.Target, name string, b []byte) {
	t.Helper()
	if _, err := tg.Put(context.Background(), name, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// TestBackupsPageShowsEveryBackupAsTheTargetHoldsIt makes backups and then
// damages them through the target, one way each, and checks the page
// against what was done: good (drill passed), unverified (never drilled),
// partial (an object cut short, or no manifest), failed (a drill that
// failed, a manifest whose signature no longer verifies); the newest good
// backup and its age; how long each key object is kept; the last drill.
// An auditor reads it without any action; an admin's "Back up now" and
// "Verify" are recorded and then run.
func TestBackupsPageShowsEveryBackupAsTheTargetHoldsIt(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	ctx := context.Background()
	svc, tg := e.backups, e.backups.Target()
	e.member("root", staff.Admin)
	e.member("aud", staff.Auditor)
	aud := e.browser()
	aud.mustSignIn("aud")

	// Nothing yet: no good backup, and that is overdue.
	if r := aud.get("/console/backups"); r.status != 200 || !strings.Contains(r.body, `id="newest">none`) || !strings.Contains(r.body, `id="overdue"`) {
		t.Fatalf("empty target: %d %.500s", r.status, r.body)
	}

	run := func() backup.Manifest {
		t.Helper()
		e.tick(time.Hour)
		res, err := svc.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res.Manifest
	}
	want := map[string]string{}
	oldGood := run()
	want[oldGood.ID] = "good"
	e.tick(25 * time.Hour) // the day before: retention keeps the newest good backup of each day
	drillFailed := run()
	d := object(t, tg, drillFailed.Data.Name)
	d[len(d)/2] ^= 1 // same size, so only a restore finds it
	put(t, tg, drillFailed.Data.Name, d)
	if dr, _ := svc.Drill(ctx, drillFailed.ID); dr.OK {
		t.Fatal("drill of a flipped byte passed")
	}
	want[drillFailed.ID] = "failed"
	truncated := run()
	put(t, tg, truncated.Data.Name, object(t, tg, truncated.Data.Name)[:truncated.Data.Size-1])
	want[truncated.ID] = "partial"
	unfinished := run()
	if err := tg.Delete(ctx, "manifests/"+unfinished.ID+".json"); err != nil {
		t.Fatal(err)
	}
	want[unfinished.ID] = "partial"
	forged := run()
	m := object(t, tg, "manifests/"+forged.ID+".json")
	put(t, tg, "manifests/"+forged.ID+".json", bytes.Replace(m, []byte(`"payload": "ey`), []byte(`"payload": "eX`), 1))
	want[forged.ID] = "failed"
	newestGood := run()
	want[newestGood.ID] = "good"
	e.tick(time.Hour)
	undrilled, err := svc.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want[undrilled.ID] = "unverified"
	keysGone := oldGood // its key object deleted, as retention does after the key days
	if err := tg.Delete(ctx, "keys/"+keysGone.ID+".ferrydump.age"); err != nil {
		t.Fatal(err)
	}
	e.tick(3 * time.Hour)

	aud = e.browser() // hours later: a new session
	aud.mustSignIn("aud")
	r := aud.get("/console/backups")
	if r.status != 200 {
		t.Fatalf("backups page: %d %.300s", r.status, r.body)
	}
	class, text := backupRows(r.body)
	if len(class) != len(want) {
		t.Errorf("page lists %d backups, the test made %d: %v", len(class), len(want), class)
	}
	for id, w := range want {
		if class[id] != w {
			t.Errorf("backup %s shown as %q, want %q", id, class[id], w)
		}
	}
	if !strings.Contains(r.body, `id="newest"><code>`+newestGood.ID+`</code>, 4 h old`) || strings.Contains(r.body, `id="overdue"`) {
		t.Errorf("newest good backup: %s", between(r.body, `id="newest">`, "</dd>"))
	}
	if !strings.Contains(between(r.body, `id="last-drill">`, "</dd>"), newestGood.ID) {
		t.Errorf("last drill: %s", between(r.body, `id="last-drill">`, "</dd>"))
	}
	keyDays := 7
	if w := "kept until " + newestGood.CreatedAt.AddDate(0, 0, keyDays).Format(time.DateOnly); strings.Contains(text[newestGood.ID], w) ||
		!strings.Contains(text[newestGood.ID], "kept while this is the newest good backup") {
		t.Errorf("newest good backup's keys: %s", text[newestGood.ID])
	}
	if w := "kept until " + drillFailed.CreatedAt.AddDate(0, 0, keyDays).Format(time.DateOnly); !strings.Contains(text[drillFailed.ID], w) {
		t.Errorf("keys of %s: want %q in %s", drillFailed.ID, w, text[drillFailed.ID])
	}
	if !strings.Contains(text[keysGone.ID], "expired") {
		t.Errorf("deleted key object: %s", text[keysGone.ID])
	}
	if !strings.Contains(text[newestGood.ID], newestGood.Data.Name) || !strings.Contains(r.body, svc.Target().String()) {
		t.Error("the page does not say where the backups are")
	}
	// Read-only for the auditor: no form at all.
	if strings.Contains(r.body, `action="/console/backups/run"`) || strings.Contains(r.body, "/verify") {
		t.Error("the auditor is offered actions")
	}

	// An admin backs up now: recorded, then run; the new backup becomes
	// the newest good one.
	adm := e.browser()
	adm.mustSignIn("root")
	page := adm.get("/console/backups")
	tok := csrfOf(page.body)
	if !strings.Contains(page.body, `action="/console/backups/run"`) || !strings.Contains(page.body, `action="/console/backups/`+newestGood.ID+`/verify"`) ||
		strings.Contains(page.body, `action="/console/backups/`+unfinished.ID+`/verify"`) {
		t.Error("admin's page lacks its actions, or offers to drill a backup with no manifest")
	}
	e.tick(time.Minute)
	before := e.auditCount()
	if r := adm.post("/console/backups/run", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/backups?started=backup" {
		t.Fatalf("back up now: %d %s", r.status, r.header.Get("Location"))
	}
	if row := e.lastAudit(); e.auditCount() != before+1 || row.Action != "backups.run" || row.Actor != "root" || row.Category != "Backups" {
		t.Errorf("back up now not recorded: %+v", row)
	}
	e.c.Wait()
	g, ok, err := svc.NewestGood(ctx)
	if err != nil || !ok || g.ID == newestGood.ID || !g.CreatedAt.Equal(e.now) {
		t.Fatalf("after back up now: newest good %+v (%v), now %v", g, err, e.now)
	}
	if r := adm.get("/console/backups?started=backup"); !strings.Contains(r.body, `id="flash"`) || !strings.Contains(r.body, `id="newest"><code>`+g.ID) {
		t.Errorf("page after back up now: %s", between(r.body, `id="summary"`, "</section>"))
	}

	// Verify one backup: recorded, drilled; the drill is the last one.
	e.tick(time.Minute)
	before = e.auditCount()
	if r := adm.post("/console/backups/"+oldGood.ID+"/verify", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("verify: %d %.300s", r.status, r.body)
	}
	if row := e.lastAudit(); e.auditCount() != before+1 || row.Action != "backups.verify" || row.Object != oldGood.ID {
		t.Errorf("verify not recorded: %+v", row)
	}
	e.c.Wait()
	st, err := svc.Status(ctx)
	if err != nil || st.LastDrillID != oldGood.ID || !st.LastDrillAt.Equal(e.now) {
		t.Errorf("after verify: %+v %v", st, err)
	}

	// What cannot be drilled is refused before anything is recorded; so is
	// a form without its token.
	for _, c := range []struct {
		path   string
		form   url.Values
		status int
	}{
		{"/console/backups/20990101t000000z-000000/verify", url.Values{"csrf": {tok}}, http.StatusNotFound},
		{"/console/backups/" + url.PathEscape("../../etc") + "/verify", url.Values{"csrf": {tok}}, http.StatusNotFound},
		{"/console/backups/" + forged.ID + "/verify", url.Values{"csrf": {tok}}, http.StatusConflict},
		{"/console/backups/" + unfinished.ID + "/verify", url.Values{"csrf": {tok}}, http.StatusNotFound},
		{"/console/backups/run", url.Values{}, http.StatusForbidden},
	} {
		before := e.auditCount()
		runs, _ := svc.Runs(ctx, 100)
		r := adm.post(c.path, c.form)
		e.c.Wait()
		after, _ := svc.Runs(ctx, 100)
		if r.status != c.status || len(after) != len(runs) {
			t.Errorf("%s: %d, want %d; runs %d → %d", c.path, r.status, c.status, len(runs), len(after))
		}
		if c.status != http.StatusForbidden && e.auditCount() != before {
			t.Errorf("%s: refused input left an audit row", c.path)
		}
	}
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

package cli

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry/internal/backup"
	"ferry/internal/errortrack"
)

// TestDemoShowsAnErrorEventAndAFirstBackup: `ferry demo` leaves the
// console's error events and backups pages something to show — the sample
// error its data sources page reports through Ferry's own ingest, stored
// scrubbed and tied to the page's user by a pseudonym, and a good backup in
// the data directory. A second start adds neither a second sample nor a
// second backup.
func TestDemoShowsAnErrorEventAndAFirstBackup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	start := func() (*demo, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		logs := &LogBuffer{}
		d, err := startDemo(ctx, env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: logs},
			demoOptions{AppAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0", DataDir: dir, Issues: 20})
		if err != nil {
			cancel()
			t.Fatalf("demo: %v\n%s", err, logs)
		}
		return d, cancel
	}
	check := func(d *demo) (errortrack.EventSummary, backup.Backup) {
		t.Helper()
		ctx := context.Background()
		pg, err := d.app.errorStore.Recent(ctx, errortrack.Filter{})
		if err != nil || len(pg.Events) != 1 {
			t.Fatalf("error events: %+v %v", pg.Events, err)
		}
		ev := pg.Events[0]
		_, payload, err := d.app.errorStore.Event(ctx, ev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(payload), "ada.lovelace") || strings.Contains(string(payload), "jwt=") || strings.Contains(string(payload), d.tenant) ||
			!strings.HasPrefix(ev.Title, "TypeError: demo sample") || !strings.Contains(ev.Browser, "Chrome") || ev.OS != "Linux" ||
			!strings.Contains(string(payload), `"user":{"id":"`) {
			t.Errorf("sample error %+v: %s", ev, payload)
		}
		list, err := d.app.backups.List(ctx)
		if err != nil || len(list) != 1 || list[0].State != backup.StateGood {
			t.Fatalf("backups: %+v %v", list, err)
		}
		if want := filepath.Join(dir, "backups"); !strings.Contains(d.app.backups.Target().String(), want) {
			t.Errorf("backup target %s, want under %s", d.app.backups.Target(), want)
		}
		return ev, list[0]
	}
	first, stop := start()
	ev1, b1 := check(first)
	stop()
	if err := first.wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // see TestDemoRestartKeepsItsSiteAndToken
	second, stop := start()
	defer func() { stop(); second.wait() }()
	ev2, b2 := check(second)
	if ev2.ID != ev1.ID || b2.ID != b1.ID {
		t.Errorf("second start: event %d (was %d), backup %s (was %s)", ev2.ID, ev1.ID, b2.ID, b1.ID)
	}
}

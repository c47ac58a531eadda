package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"ferry/internal/backup"
)

// What `ferry demo` puts in the staff console's error events and backups
// pages, so that neither is empty on a first look.

// demoEventID names the demo's sample error: sent again on every start, it
// is stored once (the store deduplicates an event id per project).
const demoEventID = "de0de0de0de0de0de0de0de0de0de0de"

// demoError reports one error as the Sentry browser SDK on the app's data
// sources page sends it — to Ferry's ingest, from the app's origin, with
// the tenant tag and the page's pseudonym of the user — so it is scrubbed and
// stored like any other (its message carries an email address, which the
// console shows as removed).
func demoError(ctx context.Context, a *app, appURL, tenantID, accountID string) error {
	if a.cfg.ErrorsPublicKey == "" {
		return nil
	}
	user, err := a.keys.Pseudonym(ctx, tenantID, accountID)
	if err != nil {
		return err
	}
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	ev := map[string]any{
		"event_id": demoEventID, "timestamp": float64(time.Now().UnixMilli()) / 1000, "platform": "javascript", "level": "error",
		"release": Version, "environment": "demo",
		"exception": map[string]any{"values": []any{map[string]any{
			"type":      "TypeError",
			"value":     "demo sample: cannot read properties of undefined (reading 'fields') in the data source of ada.lovelace@example.org",
			"mechanism": map[string]any{"type": "onerror", "handled": false},
			"stacktrace": map[string]any{"frames": []any{
				map[string]any{"filename": appURL + "/static/app.js", "function": "HTMLDocument.<anonymous>", "lineno": 12, "colno": 5, "in_app": true},
				map[string]any{"filename": appURL + "/static/app.js", "function": "loadSources", "lineno": 88, "colno": 17, "in_app": true},
				map[string]any{"filename": appURL + "/static/app.js", "function": "renderSource", "lineno": 141, "colno": 29, "in_app": true},
			}}}}},
		"request": map[string]any{"url": appURL + "/app/data-sources?jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJl",
			"headers": map[string]any{"User-Agent": ua}},
		"tags": map[string]any{"ferry_tenant": tenantID, "page": "data-sources"},
		"user": map[string]any{"id": user},
		"sdk":  map[string]any{"name": "sentry.javascript.browser", "version": "11.12.0"},
	}
	payload, _ := json.Marshal(ev)
	var body bytes.Buffer
	fmt.Fprintf(&body, "{\"event_id\":%q,\"sent_at\":%q}\n{\"type\":\"event\"}\n%s\n", demoEventID, time.Now().UTC().Format(time.RFC3339Nano), payload)
	q := url.Values{"sentry_key": {a.cfg.ErrorsPublicKey}, "sentry_version": {"7"}, "sentry_client": {"sentry.javascript.browser/11.12.0"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, appURL+"/errors/api/"+a.cfg.ErrorsProjectID+"/envelope/?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", appURL)
	req.Header.Set("User-Agent", ua)
	// Handed to the ingest in this process rather than sent over the
	// network: Ferry calls no one but through the egress gate, which lets it
	// reach Jira and its subprocessors — not itself.
	mux := http.NewServeMux()
	a.errorIngest.Routes(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("demo: report the sample error: the ingest answered %d: %s", rec.Code, rec.Body.String())
	}
	return nil
}

// demoBackup makes a first backup, in the data directory's backups/, when
// the target has no good one yet.
func demoBackup(ctx context.Context, a *app) error {
	list, err := a.backups.List(ctx)
	if err != nil {
		return fmt.Errorf("demo: list backups: %w", err)
	}
	if _, ok := backup.NewestGood(list); ok {
		return nil
	}
	if _, err := a.backups.Run(ctx); err != nil {
		return fmt.Errorf("demo: first backup: %w", err)
	}
	return nil
}

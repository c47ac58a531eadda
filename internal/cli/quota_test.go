package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/jirasim"
)

// The quota-exhaustion scenario (issue 20): against a site that enforces
// Jira's points quota, an export that needs more than the pool holds until
// its reset, but fits with the next window, slows down to fit — the site
// refuses nothing and no window is overspent; an export that cannot fit is
// refused before it reads anything, with a message that says why. Counts of
// windows, points and calls, from the simulator; no timing.

func quotaDemo(t *testing.T, q jirasim.Quota, issues int) (*demo, string) {
	t.Helper()
	d, _, _ := startTestDemoWith(t, demoOptions{Issues: issues, sliceRows: 50, simOptions: func(o *jirasim.Options) { o.Quota = q }})
	return d, csvSource(t, d)
}

func TestQuotaExportSlowsDownToFitThePool(t *testing.T) {
	// 1,200 points per two-second window; the export needs about 2,100.
	d, src := quotaDemo(t, jirasim.Quota{Points: 1200, Tier: "tenant", Window: 2 * time.Second}, 2000)
	// Warm what every feed request reads (fields, data source), then count
	// windows from here.
	if code, _, body := fetch(t, d.info.AppURL+"/odata/"+src+"/Issues?$top=1", d.info.Token); code != 200 {
		t.Fatalf("warm-up: %d %s", code, body)
	}
	before := len(d.sim.QuotaStatus().History)
	code, hdr, body := fetch(t, d.info.AppURL+"/export/"+src+"/issues.csv", d.info.Token)
	if code != 200 {
		t.Fatalf("CSV: %d %s", code, body)
	}
	recs, err := readRFC4180(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs)-1 != 2000 || hdr.Get("Ferry-Estimated-Rows") != "2000" {
		t.Fatalf("%d rows, estimate %q", len(recs)-1, hdr.Get("Ferry-Estimated-Rows"))
	}
	st := d.sim.Stats()
	if n := st.ThrottledBy["jira-quota-tenant-based"]; n != 0 {
		t.Errorf("the pool ran dry: Jira refused %d calls", n)
	}
	qs := d.sim.QuotaStatus()
	windows := qs.History[before:]
	if len(windows) < 2 {
		t.Errorf("the export fit in %d closed windows: it did not slow down (%+v)", len(windows), qs)
	}
	for _, w := range qs.History {
		if w.Spent > 1200 {
			t.Errorf("window at %s spent %d of 1200", w.Start.Format(time.TimeOnly), w.Spent)
		}
	}
}

func TestQuotaExportThatCannotFitIsRefusedClearly(t *testing.T) {
	d, src := quotaDemo(t, jirasim.Quota{Points: 1500, Tier: "tenant", Window: time.Hour}, 2000)
	feed := d.info.AppURL + "/odata/" + src + "/"
	if code, _, body := fetch(t, feed+"Issues?$top=1", d.info.Token); code != 200 {
		t.Fatalf("warm-up: %d %s", code, body)
	}
	// Spend the pool down to 300 points: the 2,000-issue walk (about 2,020
	// points) fits neither now nor with the next hour's 1,500.
	var app string
	for _, in := range d.sim.Installations() {
		app = in.AddonKey
	}
	spent := 0
	for _, p := range d.sim.QuotaStatus().Pools {
		spent = p.Spent
	}
	d.sim.SpendQuota(app, 1200-spent)
	// The next answer tells Ferry what is left.
	if code, _, body := fetch(t, feed+"Issues?$top=1", d.info.Token); code != 200 {
		t.Fatalf("a one-row page must still fit: %d %s", code, body)
	}
	for _, url := range []string{feed + "Issues", d.info.AppURL + "/export/" + src + "/issues.csv"} {
		d.sim.ResetStats()
		code, hdr, body := fetch(t, url, d.info.Token)
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(body, &e)
		if code != 429 || e.Error.Code != "TooManyRequests" {
			t.Fatalf("%s: %d %s", url, code, body)
		}
		for _, want := range []string{"points", "remain", "UTC", "incremental refresh"} {
			if !strings.Contains(e.Error.Message, want) {
				t.Errorf("%s: message %q does not say %q", url, e.Error.Message, want)
			}
		}
		if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra <= 0 || ra > 3600 {
			t.Errorf("%s: Retry-After %q", url, hdr.Get("Retry-After"))
		}
		// Refused before reading: the plan's probes only, not a page of rows.
		st := d.sim.Stats()
		if n := st.Requests["POST /rest/api/3/search/jql"]; n > 2 {
			t.Errorf("%s: %d searches before the refusal: %v %s", url, n, st.Requests, body)
		}
		if st.Requests["POST /rest/api/3/issue/bulkfetch"] != 0 || st.ThrottledBy["jira-quota-tenant-based"] != 0 {
			t.Errorf("%s: %+v", url, st)
		}
	}
	// The admin page says so too: the pool, today's spend by data source,
	// and the refusals.
	users := d.sim.Users()
	code, q := callAPI(t, d, "GET", "/app-api/quota", pageToken(t, d, users[0].AccountID), nil)
	if code != 200 || q["known"] != true || q["pool"] != "site" || q["quota"].(float64) != 1500 || q["spentToday"].(float64) <= 0 {
		t.Fatalf("admin quota: %d %v", code, q)
	}
	sources, _ := q["sources"].([]any)
	refused, _ := q["refused"].([]any)
	if len(sources) != 1 || sources[0].(map[string]any)["name"] != "Every field" || len(refused) != 2 {
		t.Errorf("sources %v, refused %v", sources, refused)
	} else if r := refused[0].(map[string]any); r["source"] != "Every field" || r["need"].(float64) <= r["remaining"].(float64)+1400 {
		t.Errorf("refusal %v", r)
	}
	if code, _ := callAPI(t, d, "GET", "/app-api/quota", pageToken(t, d, users[1].AccountID), nil); code != 403 {
		t.Errorf("a non-admin got %d", code)
	}
}

package cli

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
)

// The defects of the feed-correctness issue, one test each, against the
// demo (simulated Jira + Ferry). Each compares Ferry's answer with the truth
// computed here from the unfiltered full walk of the same feed. The
// differential truth suite (truth_test.go) generates many more such cases.

// fullWalk reads every row of a set without options, following nextLinks.
func fullWalk(t *testing.T, d *demo, set string) []map[string]any {
	t.Helper()
	rows, _ := allRows(t, d.info.ODataURL+set, d.info.Token)
	if len(rows) == 0 {
		t.Fatalf("%s: the full walk is empty; the test would prove nothing", set)
	}
	return rows
}

func keysOf(rows []map[string]any, prop string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		b, _ := json.Marshal(r[prop])
		out[i] = string(b)
	}
	return out
}

func where(rows []map[string]any, keep func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func sameKeys(t *testing.T, what string, got, want []map[string]any, prop string) {
	t.Helper()
	g, w := keysOf(got, prop), keysOf(want, prop)
	if !slices.Equal(g, w) {
		t.Errorf("%s: got %d rows, want %d (first differing at %d)", what, len(g), len(w), firstDiff(g, w))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestOrderByIsFoldedIntoJQLNotRefused(t *testing.T) {
	d, _, _ := startTestDemo(t, 120)
	all := fullWalk(t, d, "Issues?$select=Key,Created,Updated")
	for _, c := range []struct {
		orderby, prop string
		desc          bool
	}{{"Created", "Created", false}, {"Created desc", "Created", true}, {"Updated asc", "Updated", false}, {"Updated desc", "Updated", true}} {
		want := slices.Clone(all)
		sort.SliceStable(want, func(i, j int) bool {
			a, b := want[i][c.prop].(string), want[j][c.prop].(string)
			ta, _ := time.Parse(time.RFC3339Nano, a)
			tb, _ := time.Parse(time.RFC3339Nano, b)
			if c.desc {
				return ta.After(tb)
			}
			return ta.Before(tb)
		})
		got, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key,Created,Updated&$orderby="+url.QueryEscape(c.orderby), d.info.Token)
		sameKeys(t, "$orderby="+c.orderby, got, want, c.prop)
	}
}

func TestChangelogPagingReachesExactlyTheSelectedRows(t *testing.T) {
	d, _, _ := startTestDemo(t, 150)
	all := fullWalk(t, d, "Changelog")
	n := len(all)
	if n < 40 {
		t.Fatalf("only %d changelog rows", n)
	}
	for _, c := range []struct {
		query  string
		hdr    []string
		lo, hi int
	}{
		{"$top=3", nil, 0, 3},
		{"$top=" + itoa(n/2), nil, 0, n / 2},
		{"$top=" + itoa(n+10), nil, 0, n},
		{"$skip=" + itoa(n-25), nil, n - 25, n},
		{"$skip=" + itoa(n+1), nil, n, n},
		{"$skip=5&$top=11", nil, 5, 16},
		{"", []string{"Prefer", "odata.maxpagesize=7"}, 0, n},
		{"$skip=3&$top=20", []string{"Prefer", "odata.maxpagesize=7"}, 3, 23},
	} {
		got, _ := allRows(t, d.info.ODataURL+"Changelog?"+c.query, d.info.Token, c.hdr...)
		sameKeys(t, "Changelog?"+c.query+strings.Join(c.hdr, ":"), got, all[c.lo:c.hi], "Id")
	}
	// Every page honours the preferred size and none is empty but the last.
	url := d.info.ODataURL + "Changelog"
	for pages := 0; url != ""; pages++ {
		code, _, body := fetch(t, url, d.info.Token, "Prefer", "odata.maxpagesize=7")
		var p odataPage
		if code != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		if len(p.Value) > 7 || p.NextLink != "" && len(p.Value) == 0 {
			t.Fatalf("page %d holds %d rows (next %q)", pages, len(p.Value), p.NextLink)
		}
		url = p.NextLink
	}
}

func TestStringEqIsExactAndCaseSensitive(t *testing.T) {
	d, _, _ := startTestDemo(t, 150)
	all := fullWalk(t, d, "Issues?$select=Key,Status,Project")
	is := func(prop, v string) func(map[string]any) bool {
		return func(r map[string]any) bool { return r[prop] == v }
	}
	for _, c := range []struct {
		filter string
		keep   func(map[string]any) bool
	}{
		{"Status eq 'done'", is("Status", "done")},
		{"Status eq 'Done'", is("Status", "Done")},
		{"Status eq '10000'", is("Status", "10000")},
		{"Project eq 'core'", is("Project", "core")},
		{"Project eq 'CORE'", is("Project", "CORE")},
		{"Project eq 'Core'", is("Project", "Core")},
		{"Status in ('Done','to do')", func(r map[string]any) bool { return r["Status"] == "Done" || r["Status"] == "to do" }},
		{"Status eq 'No such status'", is("Status", "No such status")},
	} {
		got, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key,Status,Project&$filter="+url.PathEscape(c.filter), d.info.Token)
		sameKeys(t, c.filter, got, where(all, c.keep), "Key")
	}
}

func TestNegationOnFieldsJiraNeverLeavesEmpty(t *testing.T) {
	d, _, _ := startTestDemo(t, 120)
	all := fullWalk(t, d, "Issues?$select=Key,Status,Project")
	notDone := where(all, func(r map[string]any) bool { return r["Status"] != "Done" })
	for _, f := range []string{"Status ne 'Done'", "not (Status eq 'Done')", "not (Status eq 'Done' and Project eq 'NOPE')"} {
		want := notDone
		if strings.Contains(f, "NOPE") {
			want = all
		}
		got, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key,Status,Project&$filter="+url.PathEscape(f), d.info.Token)
		sameKeys(t, f, got, want, "Key")
	}
}

func TestPlusInTheQueryStringIsASpace(t *testing.T) {
	d, _, _ := startTestDemo(t, 80)
	all := fullWalk(t, d, "Issues?$select=Key,Status,Created")
	got, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key,Status,Created&$filter=Status+eq+'Done'", d.info.Token)
	sameKeys(t, "$filter=Status+eq+'Done'", got, where(all, func(r map[string]any) bool { return r["Status"] == "Done" }), "Key")
	// As Python requests and Go's url.Values encode a query.
	q := url.Values{"$select": {"Key,Status,Created"}, "$orderby": {"Created desc"}, "$filter": {"Status eq 'Done'"}}
	got, _ = allRows(t, d.info.ODataURL+"Issues?"+q.Encode(), d.info.Token)
	sameKeys(t, q.Encode(), got, where(all, func(r map[string]any) bool { return r["Status"] == "Done" }), "Key")
	// A literal plus arrives as %2B.
	code, _, body := fetch(t, d.info.ODataURL+"Issues?$filter=Created+ge+2023-01-01T10:00:00%2B01:00&$top=1", d.info.Token)
	if code != 200 {
		t.Errorf("%%2B in a date-time literal: %d %s", code, body)
	}
}

func TestTrailingSlashesAndEntitiesByKey(t *testing.T) {
	d, _, _ := startTestDemo(t, 60)
	for _, p := range []string{"$metadata/", "Issues/", "Issues/$count/", "Changelog/"} {
		if code, _, body := fetch(t, d.info.ODataURL+p, d.info.Token); code != 200 {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	all := fullWalk(t, d, "Issues?$select=Key,Summary")
	key := all[len(all)/2]["Key"].(string)
	for _, p := range []string{"Issues('" + key + "')", "Issues(Key='" + key + "')", "Issues('" + key + "')?$select=Summary"} {
		path, query, _ := strings.Cut(p, "?")
		code, _, body := fetch(t, d.info.ODataURL+url.PathEscape(path)+"?"+query, d.info.Token)
		var e map[string]any
		json.Unmarshal(body, &e)
		if code != 200 || e["Key"] != key || e["Summary"] != all[len(all)/2]["Summary"] || !strings.HasSuffix(e["@odata.context"].(string), "$entity") {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	for _, p := range []string{"Issues('NOPE-999')", "Issues('" + strings.ToLower(key) + "')"} {
		if code, _, body := fetch(t, d.info.ODataURL+url.PathEscape(p), d.info.Token); code != 404 || !strings.Contains(string(body), `"NotFound"`) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	cl := fullWalk(t, d, "Changelog")
	id := cl[len(cl)/2]["Id"].(string)
	code, _, body := fetch(t, d.info.ODataURL+url.PathEscape("Changelog('"+id+"')"), d.info.Token)
	var e map[string]any
	json.Unmarshal(body, &e)
	if code != 200 || e["Id"] != id || e["Field"] != cl[len(cl)/2]["Field"] {
		t.Errorf("Changelog('%s'): %d %s", id, code, body)
	}
}

func TestDateTimeFiltersReadTheUsersTimeZone(t *testing.T) {
	d, _, _ := startTestDemo(t, 200)
	all := fullWalk(t, d, "Issues?$select=Key,Created,Updated,Resolved")
	created := func(r map[string]any) time.Time {
		ts, _ := time.Parse(time.RFC3339Nano, r["Created"].(string))
		return ts
	}
	mid := created(all[len(all)/2]).Truncate(time.Minute)
	for _, c := range []struct {
		filter string
		keep   func(map[string]any) bool
	}{
		{"Created ge " + mid.Format(time.RFC3339), func(r map[string]any) bool { return !created(r).Before(mid) }},
		{"Created lt " + mid.Format(time.RFC3339), func(r map[string]any) bool { return created(r).Before(mid) }},
		// Seconds, as Power BI's RangeStart/RangeEnd send them.
		{"Created ge " + mid.Add(30*time.Second).Format(time.RFC3339), func(r map[string]any) bool { return !created(r).Before(mid.Add(30 * time.Second)) }},
		{"Created le " + mid.Add(30*time.Second).Format(time.RFC3339), func(r map[string]any) bool { return !created(r).After(mid.Add(30 * time.Second)) }},
		{"Created gt " + created(all[7]).Format(time.RFC3339Nano), func(r map[string]any) bool { return created(r).After(created(all[7])) }},
		{"Created eq " + created(all[7]).Format(time.RFC3339Nano), func(r map[string]any) bool { return created(r).Equal(created(all[7])) }},
		{"Resolved ne null", func(r map[string]any) bool { return r["Resolved"] != nil }},
	} {
		got, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key,Created,Updated,Resolved&$filter="+url.PathEscape(c.filter), d.info.Token)
		sameKeys(t, c.filter, got, where(all, c.keep), "Key")
	}
}

func TestSkiptokenIsBoundToItsDataSource(t *testing.T) {
	d, _, _ := startTestDemo(t, 60)
	ctx := context.Background()
	tn, _ := d.app.tenants.ByID(ctx, d.tenant)
	app, _ := d.app.platform.Properties(ctx, tn)
	other, err := d.app.appAPI.Sources.Create(ctx, app, d.tenant, export.Input{Name: "Other", JQL: demoJQL, Fields: demoFields,
		Tables: []string{export.TableIssues, export.TableChangelog}, Visibility: export.VisibilityEveryone}, d.sim.Users()[0].AccountID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := fetch(t, d.info.ODataURL+"Issues?$select=Key", d.info.Token, "Prefer", "odata.maxpagesize=10")
	var p odataPage
	json.Unmarshal(body, &p)
	if p.NextLink == "" {
		t.Fatal("no nextLink on the first page")
	}
	moved := strings.Replace(p.NextLink, "/odata/"+d.info.SourceID+"/", "/odata/"+other.ID+"/", 1)
	code, _, body := fetch(t, moved, d.info.Token, "Prefer", "odata.maxpagesize=10")
	if code != 400 || !strings.Contains(string(body), "InvalidSkipToken") {
		t.Fatalf("a skiptoken of source %s on source %s: %d %s", d.info.SourceID, other.ID, code, body)
	}
	if code, _, body := fetch(t, p.NextLink, d.info.Token, "Prefer", "odata.maxpagesize=10"); code != 200 {
		t.Fatalf("the skiptoken on its own source: %d %s", code, body)
	}
}

func TestDataSourceIDsThatLookLikeCacheKeysServeFeeds(t *testing.T) {
	d, _, _ := startTestDemo(t, 40)
	ctx := context.Background()
	tn, _ := d.app.tenants.ByID(ctx, d.tenant)
	app, _ := d.app.platform.Properties(ctx, tn)
	now := time.Now().UTC()
	for _, id := range []string{"settings", "list"} {
		src := export.DataSource{ID: id, Name: "Named " + id, JQL: demoJQL, Fields: demoFields, Tables: []string{export.TableIssues},
			History: []export.Change{{Action: "created", By: d.sim.Users()[0].AccountID, At: now}}, Updated: now}
		if err := d.app.appAPI.Sources.Restore(ctx, app, d.tenant, src); err != nil {
			t.Fatal(err)
		}
		// Fill the cache the way the app does, then ask for the feed.
		d.app.appAPI.Sources.List(ctx, app, d.tenant)
		d.app.appAPI.Sources.Settings(ctx, app, d.tenant, 365)
		rows, _ := allRows(t, d.info.AppURL+"/odata/"+id+"/Issues?$select=Key", d.info.Token)
		if len(rows) != 40 {
			t.Errorf("source %q: %d rows", id, len(rows))
		}
	}
}

func TestDeactivatedUsersTokenGetsAClearRefusal(t *testing.T) {
	d, _, _ := startTestDemo(t, 20)
	closed := -1
	for i, u := range d.sim.Users() {
		if u.Closed {
			closed = i
			break
		}
	}
	if closed < 0 {
		t.Fatal("the simulated site has no deactivated user")
	}
	tok, _, err := d.app.appAPI.Tokens.Create(context.Background(), d.tenant, d.sim.Users()[closed].AccountID, "gone", 5, 365)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{d.info.ODataURL + "Issues", d.info.CSVURL} {
		code, _, body := fetch(t, u, tok)
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(body, &e)
		if code != 403 || e.Error.Code != "Forbidden" || !strings.Contains(e.Error.Message, "deactivated") {
			t.Errorf("%s with a deactivated user's token: %d %s", u, code, body)
		}
	}
}

func TestFormatNegotiationAndOneErrorVocabulary(t *testing.T) {
	d, _, _ := startTestDemo(t, 30)
	page := func(query string, hdr ...string) (int, string, map[string]any) {
		code, h, body := fetch(t, d.info.ODataURL+"Issues?$top=2&$count=true&$select=Key,Id,StoryPoints,Labels,Created"+query, d.info.Token, hdr...)
		var m map[string]any
		json.Unmarshal(body, &m)
		return code, h.Get("Content-Type"), m
	}
	first := func(m map[string]any) map[string]any { return m["value"].([]any)[0].(map[string]any) }
	// none: no control information but count and nextLink.
	for _, c := range [][]string{{"", "Accept", "application/json;odata.metadata=none"}, {"&$format=application/json;odata.metadata=none"}} {
		code, ct, m := page(c[0], c[1:]...)
		if _, has := m["@odata.context"]; code != 200 || has || m["@odata.count"] == nil || !strings.Contains(ct, "odata.metadata=none") {
			t.Errorf("metadata=none %v: %d %s %v", c, code, ct, m)
		}
	}
	// full: each entity's type and id, and the types JSON cannot show.
	code, ct, m := page("", "Accept", "application/json;odata.metadata=full")
	if row := first(m); code != 200 || !strings.Contains(ct, "odata.metadata=full") || row["@odata.type"] != "#Ferry.Issue" ||
		!strings.HasPrefix(row["@odata.id"].(string), "Issues('") || row["Id@odata.type"] != "#Int64" || row["Created@odata.type"] != "#DateTimeOffset" {
		t.Errorf("metadata=full: %d %s %v", code, ct, row)
	}
	// IEEE754Compatible: Int64 and Decimal (and the count) as strings.
	code, ct, m = page("", "Accept", "application/json;IEEE754Compatible=true")
	if row := first(m); code != 200 || !strings.Contains(ct, "IEEE754Compatible=true") || m["@odata.count"] != "30" {
		t.Errorf("IEEE754Compatible: %d %s %v", code, ct, m)
	} else if _, isStr := row["Id"].(string); !isStr {
		t.Errorf("IEEE754Compatible: Id is %T", row["Id"])
	}
	// $format wins over Accept; an Accept that allows no JSON is 406.
	if code, _, _ := page("&$format=json", "Accept", "application/xml"); code != 200 {
		t.Errorf("$format=json with Accept: application/xml: %d", code)
	}
	// One vocabulary: every feed error, OData or CSV, carries a code from
	// the same PascalCase list.
	vocabulary := map[string]bool{"BadRequest": true, "UnknownProperty": true, "TypeMismatch": true, "InvalidSkipToken": true,
		"Unauthorized": true, "LicenseRequired": true, "Forbidden": true, "NotFound": true, "NotAcceptable": true,
		"TooManyRequests": true, "InternalError": true, "NotImplemented": true, "ServiceUnavailable": true}
	for _, c := range []struct {
		url, token string
		hdr        []string
		status     int
	}{
		{d.info.ODataURL + "Issues", d.info.Token, []string{"Accept", "application/xml"}, 406},
		{d.info.ODataURL + "Issues", d.info.Token, []string{"Accept", "text/csv"}, 406},
		{d.info.ODataURL + "$metadata", d.info.Token, []string{"Accept", "application/json"}, 406},
		{d.info.ODataURL + "Issues", "", nil, 401},
		{d.info.ODataURL + "Nope", d.info.Token, nil, 404},
		{d.info.ODataURL + "Issues?$top=x", d.info.Token, nil, 400},
		{d.info.ODataURL + "Issues?$expand=x", d.info.Token, nil, 501},
		{d.info.AppURL + "/odata/nosuchsource/Issues", d.info.Token, nil, 404},
		{d.info.AppURL + "/export/nosuchsource/issues.csv", d.info.Token, nil, 404},
		{d.info.AppURL + "/export/" + d.info.SourceID + "/nope.csv", d.info.Token, nil, 404},
		{d.info.AppURL + "/export/" + d.info.SourceID + "/issues.csv", "fry_nope", nil, 401},
	} {
		code, _, body := fetch(t, c.url, c.token, c.hdr...)
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(body, &e)
		if code != c.status || !vocabulary[e.Error.Code] || e.Error.Message == "" {
			t.Errorf("%s %v: %d %s", c.url, c.hdr, code, body)
		}
	}
}

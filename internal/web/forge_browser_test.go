package web_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestForgeEndToEndInChromium is issue 14's end to end on Forge, through
// the simulated Jira playing Forge: `ferry demo` installs the app as Forge
// does (the generated manifest, the Custom UI build, avi:forge:installed:app);
// a data source and a token are made on the Custom UI page in Chromium,
// where every call goes through @forge/bridge invokeRemote; then, with the
// browser gone and no invocation in flight, the OData and CSV feeds return
// exactly the issues each token's owner may browse — computed apart from
// Ferry, by asking the simulated Jira as that user — and a second user gets
// fewer; Forge is not invoked for any of it. preUninstall then ends the
// tenant the way a Connect uninstall does: the feeds stop.
func TestForgeEndToEndInChromium(t *testing.T) {
	bin := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	d, _ := startDemoOn(t, "forge")
	if d.Platform != "forge" || !strings.Contains(d.AppPageURL, "/jira/forge/") {
		t.Fatalf("the demo did not install through Forge: %+v", d)
	}
	page, _ := url.Parse(d.AppPageURL)
	var users []simUser
	getJSON(t, d.SimURL+"/_sim/users", &users)
	adminID := page.Query().Get("as")
	ai := slices.IndexFunc(users, func(u simUser) bool {
		return u.AccountID == adminID
	})
	bi := -1
	for i, u := range users {
		if !u.Admin && !u.Closed && len(u.Projects) > 0 && (bi < 0 || len(u.Projects) < len(users[bi].Projects)) {
			bi = i
		}
	}
	if ai < 0 || bi < 0 {
		t.Fatalf("the simulated Jira has no admin %q or no restricted user", adminID)
	}
	admin, reader := users[ai], users[bi]

	b, problems := openBrowser(t, bin)
	b.open(d.AppPageURL)
	b.step("the Custom UI knows who is signed in", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#new-source"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("article.source"), b.in()))
	if who := runIn(b, "whoami", chromedp.Text(chromedp.CSS("#whoami"), b.in())); !strings.HasPrefix(who, "Signed in as ") {
		t.Errorf("whoami = %q", who)
	}
	const jql = `created >= "2001-01-01" ORDER BY key ASC`
	b.step("create a data source", 20*time.Second,
		chromedp.Click(chromedp.CSS("#new-source"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.SendKeys(chromedp.CSS("#src-name"), "Forge browser test", b.in()),
		chromedp.SendKeys(chromedp.CSS("#src-jql"), jql, b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#field-options button[data-field="summary"]`), b.in()),
		chromedp.SetValue(chromedp.CSS("#field-search"), "summ", b.in()),
		chromedp.Click(chromedp.CSS(`#field-options button[data-field="summary"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#field-selected li[data-field="summary"]`), b.in()),
		// New sources are private to their owner; the reader below pulls it.
		chromedp.Click(chromedp.CSS("#vis-everyone"), b.in()),
		chromedp.Click(chromedp.CSS("#source-save"), b.in()),
		chromedp.WaitNotVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("article.source + article.source"), b.in()))
	var feedURL string
	for _, a := range runIn(b, "feed URLs", chromedp.AttributesAll(chromedp.CSSAll("input.feed-url"), b.in())) {
		if a["value"] != d.ODataURL {
			feedURL = a["value"]
		}
	}
	if !strings.HasPrefix(feedURL, d.AppURL+"/odata/") {
		t.Fatalf("feed URL of the new source = %q", feedURL)
	}
	srcID := strings.TrimSuffix(strings.TrimPrefix(feedURL, d.AppURL+"/odata/"), "/")
	tokenA := createToken(b, "Power BI (Forge browser test)")
	b.shot("forge-data-sources.png", "#tokens")
	b.noEmail("Custom UI data sources page")

	// The restricted user: sees the source, may not change it, makes a token.
	b.open(strings.Replace(d.AppPageURL, "as="+url.QueryEscape(adminID), "as="+url.QueryEscape(reader.AccountID), 1))
	b.step("reader view", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#cannot-create"), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`article[data-id="`+srcID+`"]`), b.in()))
	tokenB := createToken(b, "Excel (Forge browser test)")
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
	b.close()

	// No invocation in flight from here on: the feeds read Jira with the
	// system token the platform left and offline impersonation.
	var before, after forgeStats
	getJSON(t, d.SimURL+"/_sim/forge/stats", &before)
	csvURL := d.AppURL + "/export/" + srcID + "/issues.csv"
	keysA, keysB := odataKeys(t, feedURL, tokenA), odataKeys(t, feedURL, tokenB)
	csvA, csvB := csvKeys(t, csvURL, tokenA), csvKeys(t, csvURL, tokenB)
	getJSON(t, d.SimURL+"/_sim/forge/stats", &after)
	truthA, truthB := simKeys(t, d.SimURL, admin.Email, admin.APIToken, jql), simKeys(t, d.SimURL, reader.Email, reader.APIToken, jql)
	t.Logf("rows: admin %d (csv %d, truth %d), reader %d (csv %d, truth %d); impersonations %v", len(keysA), len(csvA), len(truthA), len(keysB), len(csvB), len(truthB), after.Impersonations)
	if len(truthB) == 0 || len(truthB) >= len(truthA) {
		t.Fatalf("the simulated data must give the reader fewer issues, but some: %d vs %d", len(truthB), len(truthA))
	}
	for _, c := range []struct {
		who       string
		got, want []string
	}{{"OData as the admin", keysA, truthA}, {"CSV as the admin", csvA, truthA}, {"OData as the reader", keysB, truthB}, {"CSV as the reader", csvB, truthB}} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %d rows, want exactly the %d issues Jira shows that user (first diff near %v)", c.who, len(c.got), len(c.want), firstDiff(c.got, c.want))
		}
	}
	if len(after.Deliveries) != len(before.Deliveries) {
		t.Errorf("the feeds made Forge invoke the app (%d deliveries during the reads)", len(after.Deliveries)-len(before.Deliveries))
	}
	if after.Impersonations[admin.AccountID] == 0 || after.Impersonations[reader.AccountID] == 0 {
		t.Errorf("the feeds must read as each token's owner through offline impersonation: %v", after.Impersonations)
	}

	// preUninstall: the tenant ends like a Connect uninstall; feeds stop.
	var installs []struct {
		ID string `json:"id"`
	}
	getJSON(t, d.SimURL+"/_sim/forge/installations", &installs)
	if len(installs) != 1 {
		t.Fatalf("Forge installations: %v", installs)
	}
	body, _ := json.Marshal(map[string]string{"installation_id": installs[0].ID})
	resp, err := http.Post(d.SimURL+"/_sim/forge/uninstall", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("uninstall: %v %v", err, resp)
	}
	resp.Body.Close()
	status, text := feedGet(t, feedURL+"Issues?$top=1", tokenA)
	if status != 403 || !strings.Contains(text, "uninstalled") {
		t.Errorf("a feed after preUninstall: %d %.200s", status, text)
	}
}

// simUser is a user as the simulated Jira's control API lists it, with
// their credentials.
type simUser struct {
	Email       string   `json:"email"`
	APIToken    string   `json:"api_token"`
	AccountID   string   `json:"account_id"`
	DisplayName string   `json:"display_name"`
	Admin       bool     `json:"admin"`
	Projects    []string `json:"projects"`
	Closed      bool     `json:"closed"`
}

type forgeStats struct {
	Deliveries     []json.RawMessage `json:"deliveries"`
	Impersonations map[string]int    `json:"impersonations"`
}

func (b *tab) close() {
	b.t.Helper()
	chromedp.Cancel(b.ctx)
}

// createToken makes a token on the open page and returns it as shown.
func createToken(b *tab, label string) string {
	b.t.Helper()
	b.step("create a token", 20*time.Second,
		chromedp.SendKeys(chromedp.CSS("#token-label"), label, b.in()),
		chromedp.Click(chromedp.CSS("#token-create"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#token-new"), b.in()))
	tok := runIn(b, "token", chromedp.Value(chromedp.CSS("#token-value"), b.in()))
	if !strings.HasPrefix(tok, "fry_") {
		b.t.Fatalf("token shown = %q", tok)
	}
	return tok
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func feedGet(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.SetBasicAuth("bi", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// odataKeys walks every page of the Issues feed and returns the keys.
func odataKeys(t *testing.T, feed, token string) []string {
	t.Helper()
	var keys []string
	next := feed + "Issues?$select=Key"
	for next != "" {
		status, body := feedGet(t, next, token)
		if status != 200 {
			t.Fatalf("GET %s: %d %.300s", next, status, body)
		}
		var page struct {
			Value []struct {
				Key string `json:"Key"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Value {
			keys = append(keys, v.Key)
		}
		next = page.Next
	}
	return keys
}

func csvKeys(t *testing.T, u, token string) []string {
	t.Helper()
	status, body := feedGet(t, u, token)
	if status != 200 {
		t.Fatalf("GET %s: %d %.300s", u, status, body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) == 0 || recs[0][0] != "Key" {
		t.Fatalf("CSV: %v %.200s", err, body)
	}
	var keys []string
	for _, r := range recs[1:] {
		keys = append(keys, r[0])
	}
	return keys
}

// simKeys asks the simulated Jira, as the user, which issues the JQL finds:
// the truth the feeds must equal, computed without Ferry.
func simKeys(t *testing.T, sim, email, apiToken, jql string) []string {
	t.Helper()
	var keys []string
	token := ""
	for {
		q := url.Values{"jql": {jql}, "fields": {"summary"}, "maxResults": {"100"}}
		if token != "" {
			q.Set("nextPageToken", token)
		}
		req, _ := http.NewRequest("GET", sim+"/rest/api/3/search/jql?"+q.Encode(), nil)
		req.SetBasicAuth(email, apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Issues []struct {
				Key string `json:"key"`
			} `json:"issues"`
			NextPageToken string `json:"nextPageToken"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("search as %s: %d %v", email, resp.StatusCode, err)
		}
		for _, i := range page.Issues {
			keys = append(keys, i.Key)
		}
		if page.NextPageToken == "" {
			return keys
		}
		token = page.NextPageToken
	}
}

// firstDiff names where two key lists part: the position and both keys.
func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("row %d: %s vs %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("row %d: one list ends", min(len(a), len(b)))
}

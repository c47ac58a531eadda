package jirasim

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// spentOf reads the app's pool from the control API's status.
func spentOf(t *testing.T, s *Sim) int {
	t.Helper()
	for _, p := range s.QuotaStatus().Pools {
		return p.Spent
	}
	return 0
}

// countArray counts the elements of a JSON array found at key in body:
// the test's own reading of what an answer returned.
func countArray(t *testing.T, body []byte, key string) int {
	t.Helper()
	var m map[string]json.RawMessage
	if key == "" {
		var list []json.RawMessage
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("not an array: %s", body)
		}
		return len(list)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var list []json.RawMessage
	json.Unmarshal(m[key], &list)
	return len(list)
}

// TestQuotaChargesPointsAsAtlassianDocumentsThem checks the price of every
// kind of call an app makes against Atlassian's model: 1 point per request,
// plus 1 per core object read and 2 per user or group; writes 1.
func TestQuotaChargesPointsAsAtlassianDocumentsThem(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 340, Projects: 2, Users: 5, Seed: 3, Quota: Quota{Points: 1 << 30}})
	in := newTestApp(t, srv.URL, "quota-app").install(s)
	users := s.Users()
	bearer := bearerFor(t, srv.URL, in, users[0].AccountID, "READ ACT_AS_USER")
	jwt := func(method, path string) string { return appJWT(t, in, method, path) }
	type probe struct {
		name   string
		do     func() result
		weight int    // points per object
		list   string // where the objects are in the answer ("" = top-level array, "-" = one object, "none" = no objects)
		nested func(body []byte) int
	}
	allIDs := make([]string, 37)
	for i := range allIDs {
		allIDs[i] = strconv.Itoa(10001 + i*3)
	}
	var q []string
	for _, u := range users[:3] {
		q = append(q, "accountId="+url.QueryEscape(u.AccountID))
	}
	probes := []probe{
		{name: "search page with fields", weight: 1, list: "issues", do: func() result {
			return call(t, srv.URL, "POST", "/rest/api/3/search/jql", bearer, map[string]any{"jql": "created >= 2000-01-01", "fields": []string{"summary", "status"}, "maxResults": 100})
		}},
		{name: "id page", weight: 1, list: "issues", do: func() result {
			return call(t, srv.URL, "POST", "/rest/api/3/search/jql", bearer, map[string]any{"jql": "created >= 2000-01-01", "fields": []string{"id"}, "maxResults": 5000})
		}},
		{name: "bulkfetch", weight: 1, list: "issues", do: func() result {
			return call(t, srv.URL, "POST", "/rest/api/3/issue/bulkfetch", bearer, map[string]any{"issueIdsOrKeys": allIDs, "fields": []string{"summary"}})
		}},
		{name: "changelog bulkfetch", weight: 1, nested: func(body []byte) int {
			var out struct {
				Logs []struct {
					H []json.RawMessage `json:"changeHistories"`
				} `json:"issueChangeLogs"`
			}
			json.Unmarshal(body, &out)
			n := 0
			for _, l := range out.Logs {
				n += len(l.H)
			}
			return n
		}, do: func() result {
			return call(t, srv.URL, "POST", "/rest/api/3/changelog/bulkfetch", bearer, map[string]any{"issueIdsOrKeys": allIDs[:10]})
		}},
		{name: "approximate count", list: "none", do: func() result {
			return call(t, srv.URL, "POST", "/rest/api/3/search/approximate-count", bearer, map[string]string{"jql": "created >= 2000-01-01"})
		}},
		{name: "one issue", weight: 1, list: "-", do: func() result { return call(t, srv.URL, "GET", "/rest/api/3/issue/10007", bearer, nil) }},
		{name: "myself", weight: 2, list: "-", do: func() result { return call(t, srv.URL, "GET", "/rest/api/3/myself", bearer, nil) }},
		{name: "users", weight: 2, list: "values", do: func() result {
			return call(t, srv.URL, "GET", "/rest/api/3/user/bulk?"+strings.Join(q, "&"), bearer, nil)
		}},
		{name: "user groups", weight: 2, list: "", do: func() result {
			p := "/rest/api/3/user/groups?accountId=" + url.QueryEscape(users[0].AccountID)
			return call(t, srv.URL, "GET", p, jwt("GET", p), nil)
		}},
		{name: "fields", weight: 1, list: "", do: func() result {
			return call(t, srv.URL, "GET", "/rest/api/3/field", jwt("GET", "/rest/api/3/field"), nil)
		}},
		{name: "write a property", list: "none", do: func() result {
			p := "/rest/atlassian-connect/1/addons/quota-app/properties/ds.abcd"
			return call(t, srv.URL, "PUT", p, jwt("PUT", p), map[string]string{"name": "x"})
		}},
		{name: "read a property", weight: 1, list: "-", do: func() result {
			p := "/rest/atlassian-connect/1/addons/quota-app/properties/ds.abcd"
			return call(t, srv.URL, "GET", p, jwt("GET", p), nil)
		}},
		{name: "property keys", weight: 1, list: "keys", do: func() result {
			p := "/rest/atlassian-connect/1/addons/quota-app/properties"
			return call(t, srv.URL, "GET", p, jwt("GET", p), nil)
		}},
		{name: "a refused query", list: "none", do: func() result {
			return call(t, srv.URL, "POST", "/rest/api/3/search/jql", bearer, map[string]any{"jql": "nonsense ==="})
		}},
	}
	for _, p := range probes {
		before := spentOf(t, s)
		r := p.do()
		got := spentOf(t, s) - before
		objects := 0
		switch {
		case p.nested != nil:
			objects = p.nested(r.body)
		case p.list == "-":
			objects = 1
		case p.list == "none":
		default:
			objects = countArray(t, r.body, p.list)
		}
		if p.list != "none" && objects == 0 {
			t.Errorf("%s: the answer holds no objects (%d %s), so it checks nothing", p.name, r.resp.StatusCode, r.body)
		}
		if want := 1 + p.weight*objects; got != want {
			t.Errorf("%s (%d, %d objects): charged %d points, want %d", p.name, r.resp.StatusCode, objects, got, want)
		}
	}
	st := s.Stats()
	if st.PointsByKind["bearer"] == 0 || st.PointsByKind["app"] == 0 || st.Points != st.PointsByKind["bearer"]+st.PointsByKind["app"] {
		t.Errorf("points by kind %v, total %d", st.PointsByKind, st.Points)
	}
}

// quotaSetup is a site with a small global pool and a frozen clock ten
// minutes into an hour.
func quotaSetup(t *testing.T, q Quota) (*Sim, string, string, *fakeClock) {
	t.Helper()
	s, srv, in, clock := quotaSite(t, q)
	return s, srv, bearerAt(t, srv, in, s.Users()[0].AccountID, "READ ACT_AS_USER", clock.now()), clock
}

func quotaSite(t *testing.T, q Quota) (*Sim, string, Installation, *fakeClock) {
	t.Helper()
	s, srv := newTestSim(t, Options{Issues: 300, Projects: 2, Users: 3, Seed: 5, Quota: q})
	in := newTestApp(t, srv.URL, "quota-app").install(s)
	clock := &fakeClock{t: time.Now().UTC().Truncate(time.Hour).Add(10 * time.Minute)}
	s.setClock(clock.now)
	return s, srv.URL, in, clock
}

func fieldsPage(t *testing.T, base, auth string) result {
	return call(t, base, "POST", "/rest/api/3/search/jql", auth, map[string]any{"jql": "created >= 2000-01-01", "fields": []string{"summary"}, "maxResults": 100})
}

// policyEntry returns the attributes of one policy in a structured
// RateLimit header, parsed as the documented format says: entries separated
// by commas, attributes by semicolons.
func policyEntry(h string, name string) map[string]string {
	for _, e := range strings.Split(h, ",") {
		parts := strings.Split(strings.TrimSpace(e), ";")
		if strings.Trim(parts[0], `"`) != name {
			continue
		}
		out := map[string]string{}
		for _, a := range parts[1:] {
			k, v, _ := strings.Cut(a, "=")
			out[k] = v
		}
		return out
	}
	return nil
}

func TestQuotaExhaustedPoolRefusesEveryRequestUntilTheHourResets(t *testing.T) {
	s, base, in, clock := quotaSite(t, Quota{Points: 450})
	bearer := bearerAt(t, base, in, s.Users()[0].AccountID, "READ ACT_AS_USER", clock.now())
	admin := basicAuth(s.Users()[0])
	served := 0
	var last result
	for i := 0; i < 10; i++ {
		if last = fieldsPage(t, base, bearer); last.resp.StatusCode != 200 {
			break
		}
		served++
		h := last.resp.Header
		pol := policyEntry(h.Get("RateLimit-Policy"), "global-app-quota")
		if pol["q"] != "450" || pol["w"] != "3600" {
			t.Fatalf("RateLimit-Policy %q", h.Get("RateLimit-Policy"))
		}
		rl := policyEntry(h.Get("RateLimit"), "global-app-quota")
		if rl["t"] != "3000" {
			t.Errorf("reset in %q s, want 3000 (50 minutes to the hour)", rl["t"])
		}
		// r appears once less than a fifth is left, with NearLimit.
		spent := 101 * served
		near := (450-spent)*5 < 450
		if _, has := rl["r"]; has != near || (h.Get("X-RateLimit-NearLimit") == "true") != near {
			t.Errorf("after %d points: RateLimit %q NearLimit %q", spent, h.Get("RateLimit"), h.Get("X-RateLimit-NearLimit"))
		}
		if near && rl["r"] != strconv.Itoa(max(450-spent, 0)) {
			t.Errorf("r=%s after %d points", rl["r"], spent)
		}
	}
	// 4 pages (404 points) fit, the fifth overdraws the pool to zero, the
	// sixth is refused.
	if served != 5 {
		t.Fatalf("%d pages served before the refusal, want 5", served)
	}
	h := last.status(t, 429).resp.Header
	if h.Get("RateLimit-Reason") != "jira-quota-global-based" || h.Get("Retry-After") != "3000" ||
		policyEntry(h.Get("RateLimit"), "global-app-quota")["r"] != "0" || h.Get("X-RateLimit-Reset") == "" {
		t.Errorf("refusal headers %v", h)
	}
	// Every endpoint is refused, and refusals cost nothing.
	spent := spentOf(t, s)
	call(t, base, "GET", "/rest/api/3/myself", bearer, nil).status(t, 429)
	if spentOf(t, s) != spent {
		t.Error("a refused request was charged")
	}
	// API-token traffic is outside the points system.
	r := fieldsPage(t, base, admin).status(t, 200)
	if r.resp.Header.Get("RateLimit-Policy") != "" {
		t.Errorf("API-token answer carries quota headers: %v", r.resp.Header)
	}
	if st := s.Stats(); st.ThrottledBy["jira-quota-global-based"] != 2 || st.PointsByKind["user"] != 101 {
		t.Errorf("stats %+v", st)
	}
	// The top of the hour refills the pool.
	clock.advance(50 * time.Minute)
	bearer = bearerAt(t, base, in, s.Users()[0].AccountID, "READ ACT_AS_USER", clock.now())
	fieldsPage(t, base, bearer).status(t, 200)
	if spentOf(t, s) != 101 {
		t.Errorf("new window spent %d, want 101", spentOf(t, s))
	}
	if hist := s.QuotaStatus().History; len(hist) != 1 || hist[0].Spent != 101*5 {
		t.Errorf("closed windows %+v", hist)
	}
}

func TestQuotaTenantPoolAndBetaHeaders(t *testing.T) {
	s, base, bearer, _ := quotaSetup(t, Quota{Points: 150, Tier: "tenant"})
	fieldsPage(t, base, bearer).status(t, 200)
	fieldsPage(t, base, bearer).status(t, 200)
	h := fieldsPage(t, base, bearer).status(t, 429).resp.Header
	if h.Get("RateLimit-Reason") != "jira-quota-tenant-based" || policyEntry(h.Get("RateLimit-Policy"), "tenant-app-quota")["q"] != "150" {
		t.Errorf("tenant pool refusal %v", h)
	}
	// Beta: the same accounting, headers prefixed, never refused.
	if err := s.SetQuota(Quota{Points: 150, Beta: true}); err != nil {
		t.Fatal(err)
	}
	var r result
	for i := 0; i < 3; i++ {
		r = fieldsPage(t, base, bearer).status(t, 200)
	}
	h = r.resp.Header
	if h.Get("RateLimit-Policy") != "" || policyEntry(h.Get("Beta-RateLimit-Policy"), "global-app-quota")["q"] != "150" ||
		policyEntry(h.Get("Beta-RateLimit"), "global-app-quota")["r"] != "0" || h.Get("Beta-Retry-After") != "3000" ||
		h.Get("X-Beta-RateLimit-Reason") != "jira-quota-global-based" {
		t.Errorf("beta headers %v", h)
	}
}

func TestQuotaControlAPIAndBurstPolicyHeaders(t *testing.T) {
	s, base, bearer, _ := quotaSetup(t, Quota{})
	s.SetKnobs(Knobs{Rate: 40})
	// Without a quota: no quota headers, but the burst policy is reported.
	r := fieldsPage(t, base, bearer).status(t, 200)
	if r.resp.Header.Get("RateLimit-Policy") != "" || policyEntry(r.resp.Header.Get("Beta-RateLimit-Policy"), "jira-burst-based")["q"] != "40" ||
		policyEntry(r.resp.Header.Get("Beta-RateLimit"), "jira-burst-based")["r"] != "39" {
		t.Errorf("headers %v", r.resp.Header)
	}
	var st QuotaStatus
	call(t, base, "POST", "/_sim/quota", "", map[string]any{"points": 1000, "window": "10m"}).status(t, 200).decode(t, &st)
	if st.Points != 1000 || st.Window != "10m0s" || st.Tier != "global" {
		t.Errorf("status %+v", st)
	}
	call(t, base, "POST", "/_sim/quota", "", map[string]any{"spend": map[string]any{"addon_key": "quota-app", "points": 990}}).status(t, 200).decode(t, &st)
	if len(st.Pools) != 1 || st.Pools[0].Remaining != 10 {
		t.Errorf("after spending: %+v", st.Pools)
	}
	h := fieldsPage(t, base, bearer).status(t, 200).resp.Header
	if pol := policyEntry(h.Get("RateLimit-Policy"), "global-app-quota"); pol["w"] != "600" {
		t.Errorf("policy %q", h.Get("RateLimit-Policy"))
	}
	fieldsPage(t, base, bearer).status(t, 429)
	for _, bad := range []map[string]any{{"points": -1}, {"tier": "galactic"}, {"window": "10ms"}, {"window": "soon"}, {"spend": map[string]any{"points": 5}}} {
		call(t, base, "POST", "/_sim/quota", "", bad).status(t, 400)
	}
}

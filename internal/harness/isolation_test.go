package harness

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jirasim"
)

var isolationOps = flag.Int("harness.isolation-ops", 300, "random requests in TestTenantIsolation")

// isoUser is a Jira user of one site, with the page token the app gives them.
type isoUser struct {
	site      int
	accountID string
	page      string
}

type isoToken struct {
	id, plain string
	site      int
	owner     string // accountId
	revoked   bool
	failures  int // feed requests made with it since it was revoked
}

// TestTenantIsolationUnderRandomRequests is a property test: several sites
// (tenants) with several users each create data sources and tokens, then
// issue random requests — feeds with any token on any source, listing,
// reading, creating and revoking tokens and sources with any user's page
// token, naming ids of any tenant. The model says what each may see; every
// answer must match it, no answer may carry another tenant's canary issue,
// source or token, and at the end every row in the database belongs to the
// tenant the model says.
func TestTenantIsolationUnderRandomRequests(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 3))
	const nSites = 3
	s := newSites(t, nSites, 10, 3)
	dir := filepath.Join(t.TempDir(), "data")
	p := startFerry(t, s.ferryEnv(freeAddr(t), dir, ""))

	canary := map[int]string{}
	clientKey := map[int]string{}
	var users []*isoUser
	sources := map[string]int{} // id → site
	var tokens []*isoToken
	for i, sim := range s.sims {
		in := s.install(t, i, p.URL)
		clientKey[i] = in.ClientKey
		admin := sim.Users()[0]
		canary[i] = fmt.Sprintf("CANARY-SITE-%d-%d", i, rnd.Uint32())
		if _, err := sim.CreateIssue(jirasim.NewIssue{Project: admin.Projects[0], Summary: canary[i]}); err != nil {
			t.Fatal(err)
		}
		for _, u := range sim.Users() {
			users = append(users, &isoUser{site: i, accountID: u.AccountID, page: s.pageToken(t, i, u.AccountID)})
		}
		for k := range 2 {
			sources[createSource(t, p.URL, s.pageToken(t, i, admin.AccountID), fmt.Sprintf("site %d source %d", i, k))] = i
		}
	}
	for _, u := range users {
		id, plain := createToken(t, p.URL, u.page, "iso")
		tokens = append(tokens, &isoToken{id: id, plain: plain, site: u.site, owner: u.accountID})
	}
	sourceIDs := func() []string {
		var ids []string
		for id := range sources {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	foreign := func(site int, body []byte) string {
		for j, c := range canary {
			if j != site && strings.Contains(string(body), c) {
				return "canary of site " + fmt.Sprint(j)
			}
		}
		for id, j := range sources {
			if j != site && strings.Contains(string(body), id) {
				return "source " + id + " of site " + fmt.Sprint(j)
			}
		}
		for _, tk := range tokens {
			if tk.site != site && (strings.Contains(string(body), tk.id) || strings.Contains(string(body), tk.plain)) {
				return "token " + tk.id + " of site " + fmt.Sprint(tk.site)
			}
		}
		return ""
	}
	apiAs := func(u *isoUser, method, path string, in any) (int, []byte) {
		code, body := api(t, p.URL, method, path, u.page, in)
		if code == 401 { // the page token expired: open the page again
			u.page = s.pageToken(t, u.site, u.accountID)
			code, body = api(t, p.URL, method, path, u.page, in)
		}
		return code, body
	}

	counts := map[string]int{}
	for op := range *isolationOps {
		u := users[rnd.IntN(len(users))]
		tk := tokens[rnd.IntN(len(tokens))]
		ids := sourceIDs()
		src := ids[rnd.IntN(len(ids))]
		var what string
		var code, want int
		var body []byte
		switch k := rnd.IntN(6); k {
		case 0, 1: // a feed: any token on any source
			what = fmt.Sprintf("feed of site %d's source with site %d's token (revoked %v)", sources[src], tk.site, tk.revoked)
			// From an address of its own: Ferry limits failed token
			// attempts per address, and revoked tokens are failures.
			code, body = callFrom(t, loopback(op), "GET", p.URL+"/odata/"+src+"/Issues?$select=Key,Summary", "Authorization", "Bearer "+tk.plain)
			switch {
			case tk.revoked:
				want = 401
				tk.failures++
				// Past the limit of failed attempts with one token, the
				// token is refused before it is looked up.
				if tk.failures > export.DefaultPrefixFailures && code == http.StatusTooManyRequests {
					want = http.StatusTooManyRequests
				}
			case sources[src] != tk.site:
				want = 404
			default:
				want = 200
			}
			if code == 200 && !strings.Contains(string(body), "@odata.context") {
				t.Fatalf("op %d: %s: not a feed: %.200s", op, what, body)
			}
			// The site admin browses every project: their feed shows their
			// own site's canary (so the check below can see one).
			if code == 200 && tk.owner == s.sims[tk.site].Users()[0].AccountID && !strings.Contains(string(body), canary[tk.site]) {
				t.Fatalf("op %d: %s: the admin's feed lacks the site's own canary", op, what)
			}
			if foreign := foreign(tk.site, body); foreign != "" {
				t.Fatalf("op %d: %s answered with %s", op, what, foreign)
			}
			counts[fmt.Sprintf("feed %d", want)]++
			if code != want {
				t.Fatalf("op %d: %s: %d, want %d: %.300s", op, what, code, want, body)
			}
			continue
		case 2: // list tokens: exactly the user's own
			what = fmt.Sprintf("site %d user lists tokens", u.site)
			code, body = apiAs(u, "GET", "/app-api/tokens", nil)
			want = 200
			var got []struct{ ID string }
			json.Unmarshal(body, &got)
			var gotIDs, wantIDs []string
			for _, g := range got {
				gotIDs = append(gotIDs, g.ID)
			}
			for _, x := range tokens {
				if x.site == u.site && x.owner == u.accountID {
					wantIDs = append(wantIDs, x.id)
				}
			}
			slices.Sort(gotIDs)
			slices.Sort(wantIDs)
			if code == 200 && !slices.Equal(gotIDs, wantIDs) {
				t.Fatalf("op %d: %s: %v, want %v", op, what, gotIDs, wantIDs)
			}
		case 3: // list or read sources: the site's own
			what = fmt.Sprintf("site %d user reads site %d's source", u.site, sources[src])
			code, body = apiAs(u, "GET", "/app-api/sources/"+src, nil)
			want = 404
			if sources[src] == u.site {
				want = 200
			}
			if rnd.IntN(2) == 0 {
				what = fmt.Sprintf("site %d user lists sources", u.site)
				code, body = apiAs(u, "GET", "/app-api/sources", nil)
				want = 200
				var got []struct{ ID string }
				json.Unmarshal(body, &got)
				n := 0
				for _, id := range ids {
					if sources[id] == u.site {
						n++
					}
				}
				if code == 200 && len(got) != n {
					t.Fatalf("op %d: %s: %d sources, want %d", op, what, len(got), n)
				}
			}
		case 4: // revoke any token: only one's own
			what = fmt.Sprintf("site %d user revokes site %d's token (own %v, revoked %v)", u.site, tk.site, tk.owner == u.accountID, tk.revoked)
			code, body = apiAs(u, "DELETE", "/app-api/tokens/"+tk.id, nil)
			mine := tk.site == u.site && tk.owner == u.accountID
			want = 404
			if mine {
				want = 204
			}
			if mine && code == 204 {
				tk.revoked = true
			}
			if mine && tk.revoked && code == 404 { // revoking twice: either answer is honest
				want = 404
			}
		case 5: // create a token (replacing revoked ones, within the cap)
			what = fmt.Sprintf("site %d user creates a token", u.site)
			code, body = apiAs(u, "POST", "/app-api/tokens", map[string]any{"label": "iso", "days": 7})
			want = 201
			var out struct{ ID, Token string }
			json.Unmarshal(body, &out)
			if code == 201 {
				tokens = append(tokens, &isoToken{id: out.ID, plain: out.Token, site: u.site, owner: u.accountID})
			}
		}
		counts[fmt.Sprintf("%s %d", strings.Fields(what)[3], code)]++
		if code != want {
			t.Fatalf("op %d: %s: %d, want %d: %.300s", op, what, code, want, body)
		}
		if foreign := foreign(u.site, body); foreign != "" {
			t.Fatalf("op %d: %s answered with %s", op, what, foreign)
		}
	}
	t.Logf("answers by kind: %v", counts)

	// Every token row belongs to the tenant of the site that created it.
	db := openDatabase(t, "sqlite", dir)
	tenantOf := map[int]string{}
	for i := range s.sims {
		var id string
		if err := db.db.QueryRow(`SELECT tenant_id FROM installations WHERE client_key = $1`, clientKey[i]).Scan(&id); err != nil {
			t.Fatal(err)
		}
		tenantOf[i] = id
	}
	for _, tk := range tokens {
		var tenant string
		var revokedAt any
		if err := db.db.QueryRow(`SELECT tenant_id, revoked_at FROM access_tokens WHERE id = $1`, tk.id).Scan(&tenant, &revokedAt); err != nil {
			t.Fatalf("token %s: %v", tk.id, err)
		}
		if tenant != tenantOf[tk.site] || (revokedAt != nil) != tk.revoked {
			t.Fatalf("token %s of site %d: row says tenant %s (want %s), revoked %v (want %v)", tk.id, tk.site, tenant, tenantOf[tk.site], revokedAt != nil, tk.revoked)
		}
	}
	if n := db.count(t, `SELECT count(*) FROM access_tokens`); n != len(tokens) {
		t.Fatalf("%d token rows, the model has %d", n, len(tokens))
	}
}

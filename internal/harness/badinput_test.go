package harness

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/jirasim"
)

// hostile is one request of the catalogue: where it goes, what it sends, the
// status it must get and a fragment of the answer that names what is wrong.
type hostile struct {
	name     string
	on       string // "app" (default), "console" or "metrics"
	method   string
	path     string
	hdr      []string
	body     string
	status   int
	want     string // in the body (or, for a redirect, the Location)
	logged   int    // request-log entries it leaves (app listener, logged prefixes)
	audited  int    // refusals the audit trail records (console)
	wantHdr  []string
	custom   func(t *testing.T) (int, string) // instead of method/path
	reqCount int                              // requests a custom case makes (default 1)
}

// hostileConfig is one configuration the catalogue starts ferry with: exit
// status 2 and one line naming the variable (or flag), nothing written.
type hostileConfig struct {
	name string
	env  map[string]string
	args []string
	want string // the variable or flag the line must name
}

// catalogueEnv is what every case starts from.
const (
	errKey     = "0123456789abcdef0123456789abcdef"
	errProject = "7"
)

// TestBadInputCatalogue sends every public endpoint and setting of Ferry
// hostile input — feeds, the app API, the Connect lifecycle, error ingest,
// the app's pages and static files, health and metrics, the staff console,
// FERRY_* variables and command-line flags — and checks that each gets its
// specific refusal (status and a message naming what is wrong; for
// configuration, exit status 2 and one line naming the variable) and that
// nothing changed: every table of the database is dumped and compared before
// and after each case (the request log, which records each request by
// design, must grow by exactly the case's requests; the audit trail by
// exactly the console refusals it records), and the data directory's
// listing is the same.
func TestBadInputCatalogue(t *testing.T) {
	s := newSites(t, 2, 12, 3)
	addr := freeAddr(t)
	dir := filepath.Join(t.TempDir(), "data")
	env := s.ferryEnv(addr, dir, "")
	env["FERRY_ERRORS_PUBLIC_KEY"], env["FERRY_ERRORS_PROJECT_ID"], env["FERRY_ERRORS_RATE"] = errKey, errProject, "20"
	// Forge Remote on too, so that its routes are in the catalogue; its key
	// set is the stand-in's (which knows no key: every FIT is a forgery).
	env["FERRY_FORGE_APP_ID"], env["FERRY_FORGE_JWKS_URL"] = forgeAppID, s.front.URL+"/forge-jwks"
	p := startFerry(t, env)
	s.install(t, 0, p.URL)
	admin := s.sims[0].Users()[0].AccountID
	page := s.pageToken(t, 0, admin)
	src := createSource(t, p.URL, page, "catalogue")
	tokID, token := createToken(t, p.URL, page, "catalogue")
	revokedID, revoked := createToken(t, p.URL, page, "to revoke")
	if code, body := api(t, p.URL, "DELETE", "/app-api/tokens/"+revokedID, page, nil); code != 204 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	// Site 1 installed too: another tenant's ids must not reach anything.
	s.install(t, 1, p.URL)
	otherPage := s.pageToken(t, 1, s.sims[1].Users()[0].AccountID)
	otherSrc := createSource(t, p.URL, otherPage, "other tenant")
	otherTokID, _ := createToken(t, p.URL, otherPage, "other tenant")
	if code, _, body := call(t, "GET", p.URL+"/odata/"+src+"/Issues?$top=1", nil, "Authorization", "Bearer "+token); code != 200 {
		t.Fatalf("setup feed: %d %s", code, body)
	}
	ingestBase = p.URL
	db := openDatabase(t, "sqlite", dir)
	feed := "/odata/" + src + "/"
	bearer := []string{"Authorization", "Bearer " + token}
	jwtAuth := []string{"Authorization", "JWT " + page, "Content-Type", "application/json"}

	cases := feedCases(feed, src, bearer, revoked)
	cases = append(cases, appAPICases(jwtAuth, otherSrc, otherTokID, tokID)...)
	cases = append(cases, lifecycleCases(s, p.URL)...)
	cases = append(cases, pageAndHealthCases()...)
	cases = append(cases, forgeCases()...)
	cases = append(cases, consoleCases()...)
	devCookie, devCSRF := staffSession(t, env, p.ConsoleURL, "dev1", "developer")
	adminCookie, adminCSRF := staffSession(t, env, p.ConsoleURL, "admin1", "admin")
	var entryID string
	if err := openDatabase(t, "sqlite", dir).db.QueryRow(`SELECT id FROM request_log LIMIT 1`).Scan(&entryID); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, signedInConsoleCases(devCookie, devCSRF, adminCookie, adminCSRF, entryID)...)
	cases = append(cases, ingestCases()...)
	configs := configCases(dir)

	// The marker: a logged request no case makes. Once its entry is written,
	// every entry queued before it is too (the log writes in queue order).
	marker := func() {
		if code, _, _ := call(t, "GET", p.URL+"/app/admin", nil); code != 401 {
			t.Fatalf("marker request: %d", code)
		}
	}
	markerCount := func() int {
		return db.count(t, `SELECT count(*) FROM request_log WHERE route = 'GET /app/admin'`)
	}
	settle := func(markersBefore int) {
		deadline := time.Now().Add(30 * time.Second)
		for markerCount() <= markersBefore {
			if time.Now().After(deadline) {
				t.Fatal("the marker request's log entry never appeared")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Excluded from the dump, each checked otherwise or changing by design:
	// the request log and the audit trail (counted per case below), the job
	// queue's own bookkeeping, and a signed-in session's last-seen time
	// (its idle timeout) — staff_sessions is dumped without that column.
	skip := func(table string) bool {
		return table == "request_log" || table == "audit_trail" || table == "staff_sessions" || strings.HasPrefix(table, "river_")
	}
	sessions := func() []string {
		return db.rows(t, `SELECT id_hash, account_id, csrf, created_at, oidc_state, oidc_nonce, oidc_verifier, enrol_token_hash FROM staff_sessions`)
	}
	audited := func() []string {
		return db.rows(t, `SELECT seq, action, outcome FROM audit_trail`)
	}

	total := len(cases) + len(configs)
	if total < 150 {
		t.Fatalf("the catalogue has %d cases, want at least 150", total)
	}
	t.Logf("%d hostile requests, %d hostile configurations", len(cases), len(configs))
	marker()
	settle(0)
	for _, c := range cases {
		before := db.dump(t, skip)
		before["staff_sessions"] = sessions()
		files := listing(t, dir)
		logBefore := db.count(t, `SELECT count(*) FROM request_log`)
		auditBefore := audited()
		mBefore := markerCount()

		code, body := 0, ""
		var hdr http.Header
		if c.custom != nil {
			code, body = c.custom(t)
		} else {
			base := p.URL
			switch c.on {
			case "console":
				base = p.ConsoleURL
			case "metrics":
				base = strings.TrimSuffix(p.MetricsURL, "/metrics")
			}
			var rd *strings.Reader
			if c.body != "" {
				rd = strings.NewReader(c.body)
			}
			req, err := http.NewRequest(c.method, base+c.path, nil)
			if rd != nil {
				req, err = http.NewRequest(c.method, base+c.path, rd)
			}
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			for i := 0; i+1 < len(c.hdr); i += 2 {
				if c.hdr[i] == "Host" {
					req.Host = c.hdr[i+1]
				} else {
					req.Header.Set(c.hdr[i], c.hdr[i+1])
				}
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			code, body, hdr = resp.StatusCode, b.String(), resp.Header
			if loc := resp.Header.Get("Location"); loc != "" {
				body += " Location: " + loc
			}
		}
		if code != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: got %d %.300q, want %d with %q", c.name, code, body, c.status, c.want)
		}
		for i := 0; i+1 < len(c.wantHdr); i += 2 {
			if hdr == nil || !strings.Contains(hdr.Get(c.wantHdr[i]), c.wantHdr[i+1]) {
				t.Errorf("%s: header %s = %q, want %q", c.name, c.wantHdr[i], hdr.Get(c.wantHdr[i]), c.wantHdr[i+1])
			}
		}
		marker()
		settle(mBefore)
		after := db.dump(t, skip)
		after["staff_sessions"] = sessions()
		if d := diffDumps(before, after); d != "" {
			t.Errorf("%s changed the database: %s", c.name, d)
		}
		if after := listing(t, dir); !slices.Equal(files, after) {
			t.Errorf("%s changed the data directory:\n%v\n→\n%v", c.name, files, after)
		}
		if n := db.count(t, `SELECT count(*) FROM request_log`) - logBefore - 1; n != c.logged {
			t.Errorf("%s left %d request-log entries, want %d", c.name, n, c.logged)
		}
		auditAfter := audited()
		var added []string
		for _, row := range auditAfter {
			if !slices.Contains(auditBefore, row) {
				added = append(added, row)
			}
		}
		for _, row := range auditBefore {
			if !slices.Contains(auditAfter, row) {
				t.Errorf("%s changed or removed audit row %s", c.name, row)
			}
		}
		if len(added) != c.audited {
			t.Errorf("%s added audit rows %v, want %d refusals", c.name, added, c.audited)
		}
		for _, row := range added {
			if strings.HasSuffix(row, " | ok") {
				t.Errorf("%s recorded a success: %s", c.name, row)
			}
		}
	}

	// Configurations: another ferry on the same data directory (the server
	// above keeps running) must refuse before it writes anything.
	for _, c := range configs {
		before := db.dump(t, skip)
		files := listing(t, dir)
		vars := map[string]string{}
		for k, v := range env {
			vars[k] = v
		}
		vars["FERRY_ADDR"], vars["FERRY_CONSOLE_ADDR"], vars["FERRY_LOG_LEVEL"] = "127.0.0.1:0", "127.0.0.1:0", "info"
		for k, v := range c.env {
			if v == "\x00unset" {
				delete(vars, k)
			} else {
				vars[k] = v
			}
		}
		args := c.args
		if args == nil {
			args = []string{"serve"}
		}
		_, stderr, code := runFerry(t, vars, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if code != 2 || !strings.HasPrefix(last, "ferry: ") || !strings.Contains(last, c.want) {
			t.Errorf("config %s: exit %d, last line %q; want exit 2 naming %s\n%s", c.name, code, last, c.want, stderr)
		}
		if d := diffDumps(before, db.dump(t, skip)); d != "" {
			t.Errorf("config %s changed the database: %s", c.name, d)
		}
		if after := listing(t, dir); !slices.Equal(files, after) {
			t.Errorf("config %s changed the data directory:\n%v\n→\n%v", c.name, files, after)
		}
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func feedCases(feed, src string, bearer []string, revoked string) []hostile {
	g := func(name, path string, hdr []string, status int, want string) hostile {
		return hostile{name: "feed: " + name, method: "GET", path: path, hdr: hdr, status: status, want: want, logged: 1}
	}
	q := func(name, query string, status int, want string) hostile {
		return g(name, feed+"Issues?"+query, bearer, status, want)
	}
	basic := func(user, pass string) []string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return []string{"Authorization", r.Header.Get("Authorization")}
	}
	csv := "/export/" + src + "/"
	return []hostile{
		g("no token", feed+"Issues", nil, 401, "Unauthorized"),
		g("unknown token", feed+"Issues", []string{"Authorization", "Bearer fry_" + strings.Repeat("x", 43)}, 401, "unknown, revoked or expired"),
		g("revoked token", feed+"Issues", []string{"Authorization", "Bearer " + revoked}, 401, "unknown, revoked or expired"),
		g("basic with the token as user name", feed+"Issues", basic(revoked, ""), 401, "Unauthorized"),
		g("basic, empty password", feed+"Issues", basic("powerbi", ""), 401, "Unauthorized"),
		g("bearer, garbage", feed+"Issues", []string{"Authorization", "Bearer fry_\xc3\xa9t\xc3\xa9"}, 401, "Unauthorized"),
		g("bearer, 10 KB", feed+"Issues", []string{"Authorization", "Bearer " + strings.Repeat("A", 10<<10)}, 401, "Unauthorized"),
		g("digest scheme", feed+"Issues", []string{"Authorization", "Digest username=x"}, 401, "Unauthorized"),
		g("JWT scheme on a feed", feed+"Issues", []string{"Authorization", "JWT a.b.c"}, 401, "Unauthorized"),
		g("token in the query string", feed+"Issues?access_token=x", nil, 401, "Unauthorized"),
		g("unknown source", "/odata/zzzzzzzzzz/Issues", bearer, 404, "No such data source"),
		g("source id with traversal", "/odata/..%2f..%2fetc/Issues", bearer, 404, "NotFound"),
		g("unknown entity set", feed+"Sprints", bearer, 404, "Issues"),
		q("malformed $filter", "$filter=Status%20eq", 400, "BadRequest"),
		q("unbalanced parenthesis", "$filter=(Status%20eq%20'Done'", 400, "BadRequest"),
		q("unterminated string", "$filter=Summary%20eq%20'abc", 400, "BadRequest"),
		q("unknown property in $filter", "$filter=Velocity%20eq%201", 400, "Velocity"),
		q("negative $top", "$top=-1", 400, "$top"),
		q("$top not a number", "$top=ten", 400, "$top"),
		q("$top beyond int64", "$top=99999999999999999999", 400, "$top"),
		q("negative $skip", "$skip=-5", 400, "$skip"),
		q("$count not a boolean", "$count=maybe", 400, "$count"),
		q("unknown field in $select", "$select=Key,Velocity", 400, "Velocity"),
		q("$select path", "$select=Status/Name", 501, "NotImplemented"),
		q("$orderby on an unsortable property", "$orderby=Summary", 501, "NotImplemented"),
		q("$orderby unknown", "$orderby=Velocity", 400, "Velocity"),
		q("$orderby bad direction", "$orderby=Created%20sideways", 400, "BadRequest"),
		q("$expand", "$expand=Changelog", 501, "$expand"),
		q("$search", "$search=secret", 501, "$search"),
		q("$apply", "$apply=groupby((Status))", 501, "$apply"),
		q("$compute", "$compute=Id%20add%201%20as%20X", 501, "$compute"),
		q("lambda", "$filter=Labels/any(l:l%20eq%20'x')", 501, "lambda"),
		q("arithmetic", "$filter=Id%20add%201%20eq%202", 501, "add"),
		q("type mismatch", "$filter=Created%20eq%20'x'", 400, "TypeMismatch"),
		q("comparing two properties", "$filter=Created%20eq%20Created", 501, "NotImplemented"),
		q("null in an in list", "$filter=Status%20in%20('Done',null)", 501, "NotImplemented"),
		q("forged skiptoken", "$skiptoken=abc", 400, "InvalidSkipToken"),
		q("skiptoken of another shape", "$skiptoken=eyJhIjoxfQ.AAAA", 400, "InvalidSkipToken"),
		q("unknown $format", "$format=atom", 406, "NotAcceptable"),
		q("unknown system option", "$levels=2", 501, "$levels"),
		q("deep nesting", "$filter="+strings.Repeat("(", 200)+"Id%20eq%201"+strings.Repeat(")", 200), 400, "BadRequest"),
		q("dangling and", "$filter=Summary%20eq%20'a'%20and", 400, "BadRequest"),
		g("$metadata as JSON", feed+"$metadata?$format=json", bearer, 406, "application/xml"),
		g("Accept allowing no JSON", feed+"Issues", append(slices.Clone(bearer), "Accept", "text/html"), 406, "NotAcceptable"),
		g("unknown entity", feed+"Issues('NOPE-1')", bearer, 404, "NOPE-1"),
		g("property path", feed+"Issues('NOPE-1')/Summary", bearer, 501, "$select"),
		g("unclosed key predicate", feed+"Issues('NOPE-1'", bearer, 400, "closing parenthesis"),
		g("$count of an entity", feed+"Issues('X-1')/$count", bearer, 404, "NotFound"),
		{name: "feed: POST", method: "POST", path: feed + "Issues", hdr: bearer, body: "{}", status: 405, want: "", logged: 1},
		{name: "feed: DELETE", method: "DELETE", path: feed + "Issues", hdr: bearer, status: 405, want: "", logged: 1},
		g("CSV without token", csv+"issues.csv", nil, 401, "Unauthorized"),
		g("CSV unknown table", csv+"sprints.csv", bearer, 404, "it offers issues.csv"),
		g("CSV unknown source", "/export/zzzzzzzzzz/issues.csv", bearer, 404, "No such data source"),
		g("CSV changelog not in the source", csv+"changelog.csv", bearer, 404, "NotFound"),
	}
}

func appAPICases(jwtAuth []string, otherSrc, otherTokID, tokID string) []hostile {
	a := func(name, method, path string, hdr []string, body string, status int, want string) hostile {
		return hostile{name: "app API: " + name, method: method, path: path, hdr: hdr, body: body, status: status, want: want, logged: 1}
	}
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`
	return []hostile{
		a("no JWT", "GET", "/app-api/sources", nil, "", 401, "unauthorized"),
		a("garbage JWT", "GET", "/app-api/sources", []string{"Authorization", "JWT garbage"}, "", 401, "unauthorized"),
		a("alg none", "GET", "/app-api/sources", []string{"Authorization", "JWT eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."}, "", 401, "unauthorized"),
		a("bearer instead of JWT", "GET", "/app-api/sources", []string{"Authorization", "Bearer x"}, "", 401, "unauthorized"),
		a("JWT of an unknown issuer", "GET", "/app-api/sources", []string{"Authorization", "JWT " + unsignedJWT(`{"alg":"HS256","typ":"JWT"}`, `{"iss":"nobody","exp":4102444800,"qsh":"context-qsh"}`)}, "", 401, "unauthorized"),
		a("source: empty name", "POST", "/app-api/sources", jwtAuth, `{"name":" ","jql":"created >= \"2000-01-01\" order by created","fields":["summary"]}`, 400, "name"),
		a("source: name of 101 characters", "POST", "/app-api/sources", jwtAuth, `{"name":"`+strings.Repeat("n", 101)+`","jql":"created >= \"2000-01-01\" order by created","fields":["summary"]}`, 400, "name"),
		a("source: no JQL", "POST", "/app-api/sources", jwtAuth, `{"name":"x","jql":"","fields":["summary"]}`, 400, "jql"),
		a("source: JQL of 4001 characters", "POST", "/app-api/sources", jwtAuth, `{"name":"x","jql":"`+strings.Repeat("a", 4001)+`","fields":["summary"]}`, 400, "jql"),
		a("source: JQL Jira refuses", "POST", "/app-api/sources", jwtAuth, `{"name":"x","jql":"project = = nonsense","fields":["summary"]}`, 400, "jql"),
		a("source: unknown table", "POST", "/app-api/sources", jwtAuth, `{"name":"x","jql":"created >= \"2000-01-01\" order by created","fields":["summary"],"tables":["NoSuchTable"]}`, 400, "tables"),
		a("source: no fields", "POST", "/app-api/sources", jwtAuth, `{"name":"x","jql":"created >= \"2000-01-01\" order by created","fields":[]}`, 400, "fields"),
		a("source: unknown field", "POST", "/app-api/sources", jwtAuth, `{"name":"x","jql":"created >= \"2000-01-01\" order by created","fields":["customfield_99999"]}`, 400, "customfield_99999"),
		a("source: body not JSON", "POST", "/app-api/sources", jwtAuth, `name=x`, 400, "invalid"),
		a("source: JSON array", "POST", "/app-api/sources", jwtAuth, `[1,2]`, 400, "invalid"),
		a("source: trailing garbage", "POST", "/app-api/sources", jwtAuth, `{"name":"x"} {"name":"y"}`, 400, "invalid"),
		a("source: body over 1 MB", "POST", "/app-api/sources", jwtAuth, big, 413, "too_large"),
		a("source: another tenant's id", "GET", "/app-api/sources/"+otherSrc, jwtAuth, "", 404, "not_found"),
		a("source: update another tenant's", "PUT", "/app-api/sources/"+otherSrc, jwtAuth, `{"name":"x","jql":"created >= \"2000-01-01\" order by created","fields":["summary"]}`, 404, "not_found"),
		a("source: delete another tenant's", "DELETE", "/app-api/sources/"+otherSrc, jwtAuth, "", 404, "not_found"),
		a("source: unknown id", "GET", "/app-api/sources/zzzzzzzz", jwtAuth, "", 404, "not_found"),
		a("token: empty label", "POST", "/app-api/tokens", jwtAuth, `{"label":"","days":5}`, 400, "label"),
		a("token: label of 81 characters", "POST", "/app-api/tokens", jwtAuth, `{"label":"`+strings.Repeat("l", 81)+`","days":5}`, 400, "label"),
		a("token: beyond the longest lifetime", "POST", "/app-api/tokens", jwtAuth, `{"label":"x","days":100000}`, 400, "days"),
		a("token: days not a number", "POST", "/app-api/tokens", jwtAuth, `{"label":"x","days":"ten"}`, 400, "invalid"),
		a("token: revoke another tenant's", "DELETE", "/app-api/tokens/"+otherTokID, jwtAuth, "", 404, "not_found"),
		a("token: revoke unknown", "DELETE", "/app-api/tokens/zzzz", jwtAuth, "", 404, "not_found"),
		a("settings: bad token lifetime", "PUT", "/app-api/settings", jwtAuth, `{"tokenMaxDays":-3}`, 400, "tokenMaxDays"),
		a("settings: a field that does not exist", "PUT", "/app-api/settings", jwtAuth, `{"creatorGroups":[],"tokenMaxDays":5}`, 400, "creatorGroups"),
		a("settings: allowlist entry not a range", "PUT", "/app-api/settings", jwtAuth, `{"tokenMaxDays":5,"allowedNetworks":["10.0.0.1/33"]}`, 400, "allowedNetworks"),
		a("admin: revoke another tenant's token", "DELETE", "/app-api/admin/tokens/"+otherTokID, jwtAuth, "", 404, "not_found"),
		a("admin: revoke an unknown token", "DELETE", "/app-api/admin/tokens/zzzz", jwtAuth, "", 404, "not_found"),
		a("transfer: another tenant's source", "PUT", "/app-api/sources/"+otherSrc+"/owner", jwtAuth, `{"accountId":"557058:0000"}`, 404, "not_found"),
		a("transfer: body not JSON", "PUT", "/app-api/sources/"+otherSrc+"/owner", jwtAuth, `owner=me`, 400, "invalid"),
		a("unknown route", "GET", "/app-api/nothing", jwtAuth, "", 404, ""),
		a("method not allowed", "PATCH", "/app-api/tokens/"+tokID, jwtAuth, `{}`, 405, ""),
	}
}

// unsignedJWT builds a token with the given header and claims and a zero
// signature: what an attacker without the secret can send.
func unsignedJWT(header, claims string) string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return enc(header) + "." + enc(claims) + "." + enc("\x00\x00\x00\x00\x00\x00\x00\x00")
}

func lifecycleCases(s *sites, appURL string) []hostile {
	variants := []struct {
		name string
		v    jirasim.InstallVariant
	}{ // all 401, but a valid token for another site's payload: 403
		{"signature altered", jirasim.InstallBadSignature}, {"wrong audience", jirasim.InstallWrongAudience},
		{"unknown kid", jirasim.InstallUnknownKeyID}, {"no kid", jirasim.InstallMissingKeyID},
		{"context qsh", jirasim.InstallContextQSH}, {"qsh of another request", jirasim.InstallWrongQSH},
		{"body clientKey is not the issuer", jirasim.InstallClientKeyMismatch}, {"alg none", jirasim.InstallAlgNone},
		{"HS256 keyed with the public key", jirasim.InstallAlgConfusion}, {"expired", jirasim.InstallExpired},
		{"unsigned", jirasim.InstallUnsigned},
	}
	var out []hostile
	for _, v := range variants {
		// Site 1 (another tenant, installed) is reinstalled by a forged
		// callback: refused, its secret unchanged.
		status := 401
		if v.v == jirasim.InstallClientKeyMismatch {
			status = 403
		}
		out = append(out, hostile{name: "lifecycle: installed, " + v.name, status: status, want: fmt.Sprint(status), logged: 1,
			custom: func(t *testing.T) (int, string) {
				before, _ := s.sims[1].Installation(addonKey)
				_, err := s.sims[1].Install(context.Background(), appURL, v.v)
				var le *jirasim.LifecycleError
				if !errors.As(err, &le) {
					return 0, fmt.Sprint(err)
				}
				if after, _ := s.sims[1].Installation(addonKey); after.SharedSecret != before.SharedSecret {
					t.Errorf("%s: the simulated site changed its secret", v.name)
				}
				return le.Status, fmt.Sprint(le.Status, " ", err)
			}})
	}
	l := func(name, method, path string, hdr []string, body string, status int, want string) hostile {
		return hostile{name: "lifecycle: " + name, method: method, path: path, hdr: hdr, body: body, status: status, want: want, logged: 1}
	}
	payload := `{"key":"ferry-bi-connector","clientKey":"ck","sharedSecret":"s","baseUrl":"https://evil.example"}`
	return append(out,
		l("installed, no Authorization", "POST", "/lifecycle/installed", nil, payload, 401, "unauthorized"),
		l("installed, JWT garbage", "POST", "/lifecycle/installed", []string{"Authorization", "JWT a.b.c"}, payload, 401, "unauthorized"),
		l("installed, HS256 forged", "POST", "/lifecycle/installed", []string{"Authorization", "JWT " + unsignedJWT(`{"alg":"HS256"}`, `{"iss":"ck","exp":4102444800,"qsh":"x"}`)}, payload, 401, "unauthorized"),
		l("uninstalled, unsigned", "POST", "/lifecycle/uninstalled", nil, payload, 401, "unauthorized"),
		l("enabled, forged", "POST", "/lifecycle/enabled", []string{"Authorization", "JWT " + unsignedJWT(`{"alg":"HS256"}`, `{"iss":"ck","exp":4102444800,"qsh":"x"}`)}, `{"clientKey":"ck"}`, 401, "unauthorized"),
		l("disabled, unsigned", "POST", "/lifecycle/disabled", nil, `{"clientKey":"ck"}`, 401, "unauthorized"),
		l("installed, GET", "GET", "/lifecycle/installed", nil, "", 405, ""),
		l("unknown event", "POST", "/lifecycle/upgraded", nil, payload, 404, ""),
	)
}

func pageAndHealthCases() []hostile {
	return []hostile{
		{name: "page: no JWT", method: "GET", path: "/app/data-sources", status: 401, want: "unauthorized", logged: 1},
		{name: "page: forged JWT in the query", method: "GET", path: "/app/data-sources?jwt=" + unsignedJWT(`{"alg":"HS256"}`, `{"iss":"ck","exp":4102444800,"qsh":"x"}`), status: 401, want: "unauthorized", logged: 1},
		{name: "page: unknown page", method: "GET", path: "/app/settings", status: 404, want: "", logged: 1},
		{name: "static: unknown file", method: "GET", path: "/static/secret.txt", status: 404, want: ""},
		{name: "static: traversal", method: "GET", path: "/static/..%2f..%2fetc%2fpasswd", status: 404, want: ""},
		{name: "descriptor: POST", method: "POST", path: "/atlassian-connect.json", body: "{}", status: 405, want: ""},
		{name: "healthz: POST", method: "POST", path: "/healthz", status: 405, want: ""},
		{name: "readyz: DELETE", method: "DELETE", path: "/readyz", status: 405, want: ""},
		{name: "metrics on the public listener", method: "GET", path: "/metrics", status: 404, want: ""},
		{name: "metrics: POST", on: "metrics", method: "POST", path: "/metrics", status: 405, want: ""},
		{name: "metrics listener: another path", on: "metrics", method: "GET", path: "/debug/pprof/", status: 404, want: ""},
		{name: "unknown path", method: "GET", path: "/wp-admin/", status: 404, want: ""},
		{name: "cross-origin form post", method: "POST", path: "/app-api/tokens", hdr: []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "Content-Type", "application/x-www-form-urlencoded"}, body: "label=x", status: 403, want: "", logged: 1},
		{name: "request body over 1 MB, declared", method: "POST", path: "/app-api/tokens", hdr: []string{"Content-Type", "application/json", "Content-Length", "2000000"}, body: strings.Repeat("x", 2000000), status: 413, want: "too_large", logged: 1},
	}
}

func consoleCases() []hostile {
	c := func(name, method, path string, hdr []string, body string, status int, want string, audited int) hostile {
		return hostile{name: "console: " + name, on: "console", method: method, path: path, hdr: hdr, body: body, status: status, want: want, audited: audited}
	}
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	forged := append(slices.Clone(form), "Cookie", "ferry_console=forged-session-id")
	return []hostile{
		c("sign-in without CSRF token", "POST", "/console/login", form, "username=admin&password=x&code=123456", 403, "did not come from the console", 1),
		c("sign-in with a planted cookie", "POST", "/console/login", forged, "username=admin&password=x&code=123456&csrf=x", 403, "did not come from the console", 1),
		c("signed-out page", "GET", "/console/tenants", nil, "", 303, "/console/login", 0),
		c("signed-out form post", "POST", "/console/staff", form, "username=eve&role=admin", 401, "sign in first", 0),
		c("forged session, page", "GET", "/console/audit", []string{"Cookie", "ferry_console=forged-session-id"}, "", 303, "/console/login", 1),
		c("forged session, decrypt", "POST", "/console/reqlog/x/decrypt", forged, "reason=x&ticket=y", 401, "sign in first", 1),
		c("cross-site sign-in", "POST", "/console/login", append(slices.Clone(form), "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), "username=a", 403, "", 1),
		c("enrolment with an unknown token", "GET", "/console/enrol/not-a-token", nil, "", 404, "", 0),
		c("enrolment post without CSRF", "POST", "/console/enrol/not-a-token", form, "password=x", 403, "did not come from the console", 1),
		c("single sign-on when not configured", "GET", "/console/sso", nil, "", 404, "", 0),
		c("sso callback when not configured", "GET", "/console/sso/callback?code=x&state=y", nil, "", 404, "", 0),
		c("static traversal", "GET", "/console/static/..%2fconsole.go", nil, "", 404, "", 0),
		c("unknown page", "GET", "/console/secrets", nil, "", 404, "", 0),
		c("logout without session", "POST", "/console/logout", form, "", 401, "sign in first", 0),
		c("PUT on a page", "PUT", "/console/staff", nil, "", 405, "", 0),
	}
}

func ingestCases() []hostile {
	env := func(items ...string) string {
		return `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}` + "\n" + strings.Join(items, "\n")
	}
	ev := `{"type":"event"}` + "\n" + `{"message":"x","user":{"email":"a@b.example"}}`
	path := "/errors/api/" + errProject + "/envelope/?sentry_key=" + errKey
	e := func(name, path string, hdr []string, body string, status int, want string) hostile {
		return hostile{name: "ingest: " + name, method: "POST", path: path, hdr: hdr, body: body, status: status, want: want, logged: 1}
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(env(`{"type":"event"}`, strings.Repeat(" ", 2<<20))))
	w.Close()
	bomb := gz.String()
	out := []hostile{
		e("no key", "/errors/api/"+errProject+"/envelope/", nil, env(ev), 401, "sentry_key"),
		e("wrong key", "/errors/api/"+errProject+"/envelope/?sentry_key=ffffffffffffffffffffffffffffffff", nil, env(ev), 401, "sentry_key"),
		e("wrong key in X-Sentry-Auth", "/errors/api/"+errProject+"/envelope/", []string{"X-Sentry-Auth", "Sentry sentry_key=ffffffffffffffffffffffffffffffff"}, env(ev), 401, "sentry_key"),
		e("unknown project", "/errors/api/999/envelope/?sentry_key="+errKey, nil, env(ev), 404, "project"),
		e("empty body", path, nil, "", 400, "envelope"),
		e("header not JSON", path, nil, "{not json\n{}", 400, "envelope"),
		e("item header without type", path, nil, env(`{"length":2}`, "{}"), 400, "envelope"),
		e("length beyond the body", path, nil, env(`{"type":"event","length":999}`, "{}"), 400, "envelope"),
		e("event not an object", path, nil, env(`{"type":"event"}`, `[1,2,3]`), 400, ""),
		e("item over 512 KB", path, nil, env(`{"type":"event"}`, `{"message":"`+strings.Repeat("m", 600<<10)+`"}`), 413, "too_large"),
		e("gzip that is not gzip", path, []string{"Content-Encoding", "gzip"}, "plain text", 400, "gzip"),
		e("gzip bomb past the envelope limit", path, []string{"Content-Encoding", "gzip"}, bomb, 413, "too_large"),
		e("unsupported encoding", path, []string{"Content-Encoding", "br"}, env(ev), 400, "Content-Encoding"),
		e("origin not the app's", path, []string{"Origin", "https://evil.example"}, env(ev), 403, "origin"),
		e("store: not JSON", "/errors/api/"+errProject+"/store/?sentry_key="+errKey, nil, "nope", 400, ""),
		{name: "ingest: GET", method: "GET", path: path, status: 405, want: "", logged: 1},
		{name: "ingest: preflight from another origin", method: "OPTIONS", path: path, hdr: []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, status: 403, want: "", logged: 1},
	}
	// Last: a flood beyond FERRY_ERRORS_RATE is answered 429 with
	// Retry-After. Its envelopes carry only a client report, an item type
	// Ferry skips, so the ones within the rate are accepted and store nothing.
	skipped := env(`{"type":"client_report"}`, `{"timestamp":1,"discarded_events":[]}`)
	const flood = 150
	out = append(out, hostile{name: "ingest: flood beyond the rate", status: 429, want: "Retry-After", logged: flood, reqCount: flood,
		custom: func(t *testing.T) (int, string) {
			var mu sync.Mutex
			got := map[int]int{}
			retry := 0
			var wg sync.WaitGroup
			next := make(chan int, flood)
			for i := range flood {
				next <- i
			}
			close(next)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range next {
						req, _ := http.NewRequest("POST", ingestBase+path, strings.NewReader(skipped))
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							t.Error(err)
							continue
						}
						resp.Body.Close()
						mu.Lock()
						got[resp.StatusCode]++
						if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "" {
							retry++
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if got[200]+got[429] != flood || got[429] == 0 || retry != got[429] {
				return 0, fmt.Sprintf("answers %v, %d with Retry-After", got, retry)
			}
			return 429, "Retry-After on every 429"
		}})
	return out
}

const forgeAppID = "ari:cloud:ecosystem::app/00000000-0000-4000-8000-00000000f0f0"

// forgeCases send Forge Remote's routes what only a forger has: no token,
// garbage, the wrong algorithm, the wrong audience, no trace headers.
func forgeCases() []hostile {
	trace := []string{"x-b3-traceid", "0123456789abcdef0123456789abcdef", "x-b3-spanid", "0123456789abcdef"}
	with := func(tok string) []string { return append(slices.Clone(trace), "Authorization", "Bearer "+tok) }
	now := time.Now().Unix()
	claims := func(aud string) string {
		return fmt.Sprintf(`{"iss":"forge/invocation-token","aud":%q,"iat":%d,"nbf":%d,"exp":%d,"jti":"j-%d","app":{"id":%q,"installationId":"ari:cloud:ecosystem::installation/x","apiBaseUrl":"https://api.atlassian.com/ex/jira/x"}}`,
			aud, now, now, now+60, now, forgeAppID)
	}
	f := func(name, method, path string, hdr []string, status int, want string) hostile {
		return hostile{name: "forge: " + name, method: method, path: path, hdr: hdr, body: `{}`, status: status, want: want, logged: 1}
	}
	return []hostile{
		f("lifecycle without a token", "POST", "/forge/lifecycle", trace, 401, "unauthorized"),
		f("lifecycle with garbage", "POST", "/forge/lifecycle", with("garbage"), 401, "unauthorized"),
		f("lifecycle without trace headers", "POST", "/forge/lifecycle", []string{"Authorization", "Bearer " + unsignedJWT(`{"alg":"RS256","kid":"k"}`, claims(forgeAppID))}, 401, "unauthorized"),
		f("lifecycle, alg none", "POST", "/forge/lifecycle", with(unsignedJWT(`{"alg":"none"}`, claims(forgeAppID))), 401, "unauthorized"),
		f("lifecycle, HS256", "POST", "/forge/lifecycle", with(unsignedJWT(`{"alg":"HS256","kid":"k"}`, claims(forgeAppID))), 401, "unauthorized"),
		f("trigger for another app", "POST", "/forge/trigger", with(unsignedJWT(`{"alg":"RS256","kid":"k"}`, claims("ari:cloud:ecosystem::app/11111111-1111-4111-8111-111111111111"))), 401, "unauthorized"),
		f("preUninstall without a token", "POST", "/forge/uninstall", trace, 401, "unauthorized"),
		f("Custom UI call without a token", "POST", "/forge/app-api/tokens", trace, 401, "unauthorized"),
		f("lifecycle, GET", "GET", "/forge/lifecycle", nil, 405, ""),
	}
}

// ingestBase is the app's URL for custom ingest cases (set by the test).
var ingestBase string

func configCases(dir string) []hostileConfig {
	c := func(name, v, value, want string) hostileConfig {
		return hostileConfig{name: name, env: map[string]string{v: value}, want: want}
	}
	return []hostileConfig{
		c("address without port", "FERRY_ADDR", "localhost", "FERRY_ADDR"),
		c("port out of range", "FERRY_ADDR", "127.0.0.1:70000", "FERRY_ADDR"),
		c("unknown database scheme", "FERRY_DATABASE_URL", "mysql://u@h/db", "FERRY_DATABASE_URL"),
		c("database URL without host", "FERRY_DATABASE_URL", "postgres:///ferry", "FERRY_DATABASE_URL"),
		c("database URL that does not parse", "FERRY_DATABASE_URL", "postgres://%zz", "FERRY_DATABASE_URL"),
		c("base URL not http", "FERRY_BASE_URL", "ftp://ferry.example", "FERRY_BASE_URL"),
		c("base URL relative", "FERRY_BASE_URL", "/ferry", "FERRY_BASE_URL"),
		c("KEK not aws-kms", "FERRY_KEK", "vault://key", "FERRY_KEK"),
		c("KMS endpoint without a KMS KEK", "FERRY_KMS_ENDPOINT", "https://kms.us-west-2.amazonaws.com", "FERRY_KMS_ENDPOINT"),
		c("TLS certificate without key", "FERRY_TLS_CERT", "/etc/ferry/tls.crt", "FERRY_TLS_KEY"),
		c("TLS key without certificate", "FERRY_TLS_KEY", "/etc/ferry/tls.key", "FERRY_TLS_CERT"),
		{name: "TLS files missing", env: map[string]string{"FERRY_TLS_CERT": dir + "-nope.crt", "FERRY_TLS_KEY": dir + "-nope.key"}, want: "FERRY_TLS_CERT"},
		c("unknown log format", "FERRY_LOG_FORMAT", "xml", "FERRY_LOG_FORMAT"),
		c("unknown log level", "FERRY_LOG_LEVEL", "loud", "FERRY_LOG_LEVEL"),
		c("install keys URL not http", "FERRY_CONNECT_INSTALL_KEYS_URL", "file:///etc/keys", "FERRY_CONNECT_INSTALL_KEYS_URL"),
		c("OAuth URL not a URL", "FERRY_CONNECT_OAUTH_URL", "oauth", "FERRY_CONNECT_OAUTH_URL"),
		c("Connect JS URL not a URL", "FERRY_CONNECT_JS_URL", "javascript:alert(1)", "FERRY_CONNECT_JS_URL"),
		c("no allowed hosts", "FERRY_CONNECT_ALLOWED_HOSTS", " , ", "FERRY_CONNECT_ALLOWED_HOSTS"),
		c("loopback flag not a boolean", "FERRY_EGRESS_ALLOW_LOOPBACK", "sometimes", "FERRY_EGRESS_ALLOW_LOOPBACK"),
		c("add-on key with a slash", "FERRY_ADDON_KEY", "ferry/bi", "FERRY_ADDON_KEY"),
		c("request log kept 61 days", "FERRY_REQUEST_LOG_DAYS", "61", "FERRY_REQUEST_LOG_DAYS"),
		c("request log days not a number", "FERRY_REQUEST_LOG_DAYS", "sixty", "FERRY_REQUEST_LOG_DAYS"),
		c("Sentry DSN without key", "FERRY_SENTRY_UPSTREAM_DSN", "https://o1.ingest.sentry.io/1", "FERRY_SENTRY_UPSTREAM_DSN"),
		c("old Sentry variable", "FERRY_SENTRY_DSN", "https://k@o1.ingest.sentry.io/1", "FERRY_SENTRY_DSN"),
		c("export workers 0", "FERRY_EXPORT_WORKERS", "0", "FERRY_EXPORT_WORKERS"),
		c("export workers 65", "FERRY_EXPORT_WORKERS", "65", "FERRY_EXPORT_WORKERS"),
		c("token lifetime 0", "FERRY_TOKEN_MAX_DAYS", "0", "FERRY_TOKEN_MAX_DAYS"),
		c("shutdown timeout negative", "FERRY_SHUTDOWN_TIMEOUT", "-5s", "FERRY_SHUTDOWN_TIMEOUT"),
		{name: "metrics on the public address", env: map[string]string{"FERRY_ADDR": "127.0.0.1:18080", "FERRY_METRICS_ADDR": "127.0.0.1:18080"}, want: "FERRY_METRICS_ADDR"},
		c("metrics address without port", "FERRY_METRICS_ADDR", "metrics", "FERRY_METRICS_ADDR"),
		c("console on a public address over HTTP", "FERRY_CONSOLE_ADDR", "0.0.0.0:8081", "FERRY_CONSOLE_ADDR"),
		c("console URL not a URL", "FERRY_CONSOLE_URL", "console", "FERRY_CONSOLE_URL"),
		c("OIDC issuer without client id", "FERRY_CONSOLE_OIDC_ISSUER", "https://id.example", "FERRY_CONSOLE_OIDC_ISSUER"),
		c("purge grace not a duration", "FERRY_PURGE_GRACE", "soon", "FERRY_PURGE_GRACE"),
		c("purge after licence lapse of a minute", "FERRY_PURGE_LICENSE_INACTIVE_AFTER", "1m", "FERRY_PURGE_LICENSE_INACTIVE_AFTER"),
		c("backups less often than daily", "FERRY_BACKUP_EVERY", "48h", "FERRY_BACKUP_EVERY"),
		c("backups every minute", "FERRY_BACKUP_EVERY", "1m", "FERRY_BACKUP_EVERY"),
		c("backup recipient not age", "FERRY_BACKUP_RECIPIENTS", "ssh-rsa AAAA", "FERRY_BACKUP_RECIPIENTS"),
		c("no daily backups kept", "FERRY_BACKUP_KEEP_DAILY", "0", "FERRY_BACKUP_KEEP_DAILY"),
		c("key backups 31 days", "FERRY_BACKUP_KEY_DAYS", "31", "FERRY_BACKUP_KEY_DAYS"),
		c("errors public key too short", "FERRY_ERRORS_PUBLIC_KEY", "short", "FERRY_ERRORS_PUBLIC_KEY"),
		c("errors project not digits", "FERRY_ERRORS_PROJECT_ID", "abc", "FERRY_ERRORS_PROJECT_ID"),
		c("errors retention 0", "FERRY_ERRORS_RETENTION_DAYS", "0", "FERRY_ERRORS_RETENTION_DAYS"),
		c("errors rate 0", "FERRY_ERRORS_RATE", "0", "FERRY_ERRORS_RATE"),
		c("region unknown", "FERRY_REGION", "mars-1", "FERRY_REGION"),
		{name: "secret and its file both set", env: map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": "https://k@o1.ingest.sentry.io/1", "FERRY_SENTRY_UPSTREAM_DSN_FILE": "/etc/dsn"}, want: "FERRY_SENTRY_UPSTREAM_DSN_FILE"},
		{name: "secret file missing", env: map[string]string{"FERRY_S3_SECRET_ACCESS_KEY_FILE": dir + "-nope"}, want: "FERRY_S3_SECRET_ACCESS_KEY_FILE"},
		{name: "flag: unknown", args: []string{"serve", "--no-such-flag"}, want: "flags"},
		{name: "flag: bad value", args: []string{"serve", "--request-log-days=100"}, want: "--request-log-days"},
		{name: "flag: bad address", args: []string{"serve", "--addr=nowhere"}, want: "FERRY_ADDR"},
		{name: "command: unknown", args: []string{"serv"}, want: "unknown command"},
		{name: "command: none", args: []string{}, want: "no command"},
		{name: "keys: unknown subcommand", args: []string{"keys", "destroy"}, want: "keys"},
		{name: "keys: retire without version", args: []string{"keys", "retire-kek"}, want: "retire-kek"},
		{name: "keys: retire a version that is not a number", args: []string{"keys", "retire-kek", "one"}, want: "retire-kek"},
		{name: "tenants: delete without reason", args: []string{"tenants", "delete", "--tenant", "x"}, want: "--reason"},
		{name: "staff: unknown role", args: []string{"staff", "add", "--user", "eve", "--role", "god"}, want: "role"},
		{name: "staff: email as user name", args: []string{"staff", "add", "--user", "eve@example.org", "--role", "support"}, want: "user"},
		{name: "jobs: run without a name", args: []string{"jobs", "run"}, want: "jobs run"},
		{name: "export: no URL", args: []string{"export", "--token", "x", "--out", dir + "-x.csv"}, want: "--url"},
	}
}

package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ferry/internal/audit"
	"ferry/internal/backup"
	"ferry/internal/config"
	"ferry/internal/egress"
	"ferry/internal/errortrack"
	"ferry/internal/keys"
	"ferry/internal/reqlog"
	"ferry/internal/staff"
	"ferry/internal/store"
	"ferry/internal/tenant"
	"ferry/internal/web/console"
)

// env is a console over a real database, key ring, audit trail and staff
// store, served by httptest, with a clock the test moves.
type env struct {
	t       *testing.T
	db      *store.DB
	ring    *keys.Ring
	trail   *audit.Trail
	staff   *staff.Store
	reqs    *reqlog.Store
	tenants *tenant.Store
	errors  *errortrack.Store
	backups *backup.Service
	c       *console.Console
	srv     *httptest.Server
	now     time.Time
	secrets map[string]string // user → TOTP secret
}

const password = "console test passphrase"

func newEnv(t *testing.T, db *store.DB, tweak func(*console.Deps)) *env {
	t.Helper()
	kekDir := t.TempDir()
	kek, err := keys.OpenLocalKEK(filepath.Join(kekDir, "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, ring: keys.NewRing(db, kek), now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), secrets: map[string]string{}}
	db.SetClock(func() time.Time { return e.now })
	e.trail = audit.New(db, e.ring, audit.DirTarget{Dir: t.TempDir()}, nil)
	e.staff = staff.NewStore(db, e.ring, e.trail)
	e.reqs = reqlog.NewStore(db, e.ring)
	e.tenants = tenant.NewStore(db, e.ring)
	reg, err := egress.NewRegistry(egress.DefaultSubprocessors("us-west-2"))
	if err != nil {
		t.Fatal(err)
	}
	e.errors = errortrack.NewStore(db)
	dir := t.TempDir()
	target, err := backup.NewDirTarget(filepath.Join(dir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	bo := backup.Options{DB: db, KEK: e.ring.KEK(), Keys: keys.Options{KeyFile: filepath.Join(kekDir, "kek.json")}, Target: target,
		Region: "us-west-2", WorkDir: filepath.Join(dir, "work"), Every: 24 * time.Hour, Version: "test"}
	if db.Dialect == store.Postgres {
		bo.DatabaseURL = db.Pool.Config().ConnString()
	}
	if e.backups, err = backup.New(bo); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.ConsoleURL = "http://127.0.0.1:1" // replaced below once the server listens
	d := console.Deps{Config: cfg, DB: db, Staff: e.staff, Audit: e.trail, Requests: e.reqs, Tenants: e.tenants, Subprocessors: reg,
		Errors: e.errors, Backups: e.backups,
		Inventory: []console.InventoryItem{
			{Category: "Account Data", Promise: "P2", Holds: "a Jira site", Table: "installations", TimeColumn: "created_at"},
			{Category: "Logs Data", Promise: "P7", Holds: "a logged request", Table: "request_log", TimeColumn: "at"},
			{Category: "Audit trail", Promise: "P14", Holds: "an access", Table: "audit_trail", TimeColumn: "at"},
		}}
	if tweak != nil {
		tweak(&d)
	}
	e.srv = httptest.NewUnstartedServer(nil)
	if d.Config.ConsoleURL == "http://127.0.0.1:1" {
		d.Config.ConsoleURL = "http://" + e.srv.Listener.Addr().String()
	}
	e.c = console.New(d)
	e.srv.Config.Handler = e.c.Handler()
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.c.Close) // backups and drills started by a test end before its database closes
	return e
}

func (e *env) tick(d time.Duration) { e.now = e.now.Add(d) }

// member adds and enrols a staff member; the next sign-in needs a new time step.
func (e *env) member(user string, role staff.Role) {
	e.t.Helper()
	ctx := context.Background()
	_, tok, err := e.staff.Add(ctx, staff.CLIActor("test"), staff.NewAccount{Username: user, Role: role})
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := e.staff.OpenEnrolment(ctx, tok)
	if err != nil {
		e.t.Fatal(err)
	}
	code, _ := staff.TOTPCode(en.TOTPSecret, e.now)
	if _, err := e.staff.CompleteEnrolment(ctx, tok, password, code); err != nil {
		e.t.Fatal(err)
	}
	e.secrets[user] = en.TOTPSecret
}

func (e *env) code(user string) string {
	c, _ := staff.TOTPCode(e.secrets[user], e.now)
	return c
}

// lastAudit is the newest trail row.
func (e *env) lastAudit() audit.Record {
	e.t.Helper()
	rows, err := e.trail.List(context.Background(), audit.Filter{Limit: 1})
	if err != nil || len(rows) == 0 {
		e.t.Fatalf("audit trail: %v, %d rows", err, len(rows))
	}
	return rows[0]
}

func (e *env) auditCount() int64 {
	seq, _, _ := e.trail.Head(context.Background())
	return seq
}

// browser is one client with its own cookies; it does not follow redirects.
type browser struct {
	e      *env
	client *http.Client
	jar    http.CookieJar
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, jar: jar, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (b *browser) do(req *http.Request) resp {
	b.e.t.Helper()
	r, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, string(body), r.Header}
}

func (b *browser) get(path string) resp {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, hdr ...string) resp {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(body string) string {
	if m := csrfRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// signIn signs user in through the sign-in form, in a fresh time step.
func (b *browser) signIn(user string) resp {
	b.e.t.Helper()
	b.e.tick(31 * time.Second)
	form := b.get("/console/login")
	if form.status != 200 {
		b.e.t.Fatalf("sign-in form: %d", form.status)
	}
	return b.post("/console/login", url.Values{"csrf": {csrfOf(form.body)}, "username": {user}, "password": {password},
		"code": {b.e.code(user)}, "next": {"/console/"}})
}

func (b *browser) mustSignIn(user string) {
	b.e.t.Helper()
	if r := b.signIn(user); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		b.e.t.Fatalf("sign in %s: %d %s", user, r.status, r.body)
	}
}

// pageCSRF fetches a page and returns the CSRF token of its forms.
func (b *browser) pageCSRF() string {
	b.e.t.Helper()
	r := b.get("/console/")
	tok := csrfOf(r.body)
	if r.status != 200 || tok == "" {
		b.e.t.Fatalf("overview: %d, csrf %q", r.status, tok)
	}
	return tok
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.srv.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

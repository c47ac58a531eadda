package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"ferry/internal/audit"
	"ferry/internal/reqinfo"
	"ferry/internal/reqlog"
	"ferry/internal/staff"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
	"ferry/internal/web/console"
)

func mustRefusal(t *testing.T, e *env, before int64, action, why string) {
	t.Helper()
	r := e.lastAudit()
	if e.auditCount() <= before || r.Action != action || r.Outcome != audit.Refused || !strings.Contains(r.Reason, why) {
		t.Fatalf("want a recorded refusal %s %q; last row %+v", action, why, r)
	}
}

func TestSignInRefusalsAreAnsweredAlikeAndRecorded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.member("alice", staff.Support)
		b := e.browser()
		form := b.get("/console/login")
		tok := csrfOf(form.body)
		if form.status != 200 || tok == "" || !strings.Contains(form.body, `name="code"`) {
			t.Fatalf("sign-in form: %d", form.status)
		}
		attempt := func(user, pass, code string) resp {
			return b.post("/console/login", url.Values{"csrf": {tok}, "username": {user}, "password": {pass}, "code": {code}})
		}
		good := e.code("alice")
		wrong := "123456"
		if wrong == good {
			wrong = "654321"
		}
		// The enrolment used the current step: its code is a replay already.
		for _, c := range []struct{ user, pass, code, why string }{
			{"alice", password, wrong, "wrong TOTP code"},
			{"alice", password, good, "replayed TOTP code"},
			{"alice", "wrong password!!", good, "wrong password"},
			{"nobody", password, good, "unknown user name"},
		} {
			before := e.auditCount()
			r := attempt(c.user, c.pass, c.code)
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "wrong user name, password or code") {
				t.Fatalf("%+v: %d", c, r.status)
			}
			if strings.Contains(r.body, c.why) {
				t.Errorf("%+v: the answer tells the cause", c)
			}
			mustRefusal(t, e, before, "staff.signin", c.why)
		}
		if _, err := e.staff.Authenticate(context.Background(), b.cookie("ferry_console")); err == nil {
			t.Fatal("a failed sign-in left a signed-in session")
		}
		e.tick(31 * time.Second)
		if r := attempt("alice", password, e.code("alice")); r.status != http.StatusSeeOther {
			t.Fatalf("good sign-in: %d %s", r.status, r.body)
		}
	})
}

func TestFormsWithoutCSRFTokenAreRefusedAndRecorded(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	e.member("ada", staff.Admin)
	b := e.browser()
	b.get("/console/login")
	// Sign-in form without its token, with another session's token.
	for _, tok := range []string{"", "not-the-token"} {
		before := e.auditCount()
		if r := b.post("/console/login", url.Values{"csrf": {tok}, "username": {"ada"}, "password": {password}, "code": {e.code("ada")}}); r.status != http.StatusForbidden {
			t.Fatalf("sign-in with csrf %q: %d", tok, r.status)
		}
		mustRefusal(t, e, before, "console.csrf", "CSRF")
	}
	b.mustSignIn("ada")
	n, _ := e.staff.List(context.Background())
	// A signed-in form (add staff) without the token changes nothing.
	before := e.auditCount()
	if r := b.post("/console/staff", url.Values{"username": {"mallory"}, "role": {"admin"}}); r.status != http.StatusForbidden {
		t.Fatalf("add staff without csrf: %d", r.status)
	}
	mustRefusal(t, e, before, "console.csrf", "CSRF")
	if m, _ := e.staff.List(context.Background()); len(m) != len(n) {
		t.Error("a CSRF-less form added an account")
	}
	// A cross-site browser request is refused before any handler, even with the token.
	before = e.auditCount()
	tok := b.pageCSRF()
	if r := b.post("/console/staff", url.Values{"csrf": {tok}, "username": {"mallory"}, "role": {"admin"}}, "Sec-Fetch-Site", "cross-site"); r.status != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", r.status)
	}
	mustRefusal(t, e, before, "console.csrf", "cross-origin")
	if m, _ := e.staff.List(context.Background()); len(m) != len(n) {
		t.Error("a cross-site form added an account")
	}
	// With the token, the same form works.
	if r := b.post("/console/staff", url.Values{"csrf": {tok}, "username": {"mallory"}, "role": {"billing"}}); r.status != 200 || !strings.Contains(r.body, "/console/enrol/") {
		t.Fatalf("add staff: %d", r.status)
	}
}

// Session fixation: a session id handed to the victim before sign-in (here:
// a visitor session the attacker made) is worth nothing after it.
func TestSessionFixationIsRefusedAndRecorded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.member("vic", staff.Support)
		attacker := e.browser()
		attacker.get("/console/login")
		planted := attacker.cookie("ferry_console")
		if planted == "" {
			t.Fatal("no visitor cookie")
		}
		victim := e.browser()
		victim.setCookie("ferry_console", planted)
		victim.mustSignIn("vic")
		got := victim.cookie("ferry_console")
		if got == "" || got == planted {
			t.Fatalf("sign-in kept the planted session id")
		}
		if r := victim.get("/console/tenants"); r.status != 200 {
			t.Fatalf("victim signed in: %d", r.status)
		}
		before := e.auditCount()
		if r := attacker.get("/console/tenants"); r.status != http.StatusSeeOther {
			t.Fatalf("attacker with the planted id: %d", r.status)
		}
		mustRefusal(t, e, before, "console.session", "no signed-in session")
		// A made-up id is refused the same way.
		forger := e.browser()
		forger.setCookie("ferry_console", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		before = e.auditCount()
		if r := forger.get("/console/"); r.status != http.StatusSeeOther {
			t.Fatalf("forged id: %d", r.status)
		}
		mustRefusal(t, e, before, "console.session", "no signed-in session")
	})
}

func TestSignInIsRateLimitedPerAddress(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	b := e.browser()
	tok := csrfOf(b.get("/console/login").body)
	var last resp
	for i := 0; i < 11; i++ {
		last = b.post("/console/login", url.Values{"csrf": {tok}, "username": {fmt.Sprint("u", i)}, "password": {"x"}, "code": {"000000"}})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("11th attempt: %d, Retry-After %q", last.status, last.header.Get("Retry-After"))
	}
	if r := e.lastAudit(); r.Action != "staff.signin" || !strings.Contains(r.Reason, "rate limited") {
		t.Errorf("last audit = %+v", r)
	}
}

func TestCookiesAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		url    string
		name   string
		secure bool
	}{{"", "ferry_console", false}, {"https://console.example.test", "__Host-ferry_console", true}} {
		e := newEnv(t, storetest.SQLite(t), func(d *console.Deps) {
			if tc.url != "" {
				d.Config.ConsoleURL = tc.url
			}
		})
		res, err := http.Get(e.srv.URL + "/console/login")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		var ck *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == tc.name {
				ck = c
			}
		}
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure != tc.secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("%s: cookie = %+v", tc.name, ck)
		}
		h := res.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || strings.Contains(h.Get("Content-Security-Policy"), "script-src") ||
			h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || (h.Get("Strict-Transport-Security") != "") != tc.secure {
			t.Errorf("%s: headers %v", tc.name, h)
		}
	}
}

// seedRequest logs one request through the real request-log middleware
// and returns its entry.
func seedRequest(t *testing.T, e *env, tenantID, path string) reqlog.Entry {
	t.Helper()
	l := reqlog.New(e.reqs, reqlog.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /odata/{source}/Issues", func(w http.ResponseWriter, r *http.Request) {
		reqinfo.SetIdentity(r.Context(), tenantID, "")
		w.Write([]byte(`{"value":[]}`))
	})
	h := l.Handler(func(r *http.Request) string { _, p := mux.Handler(r); return p }, mux)
	ctx, _ := reqinfo.With(context.Background())
	req := httptest.NewRequestWithContext(ctx, "GET", path, nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Close(context.Background())
	es, err := e.reqs.List(context.Background(), tenantID, time.Time{}, 1)
	if err != nil || len(es) != 1 {
		t.Fatalf("seeded entry: %v %v", es, err)
	}
	return es[0]
}

func TestSupportDecryptsARequestOnlyAfterAReasonAndATicket(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		if err := e.ring.EnsureTenant(context.Background(), "ten_1"); err != nil {
			t.Fatal(err)
		}
		entry := seedRequest(t, e, "ten_1", "/odata/src1/Issues?$top=7&marker=sealed-marker-42")
		e.member("sue", staff.Support)
		b := e.browser()
		b.mustSignIn("sue")
		list := b.get("/console/reqlog?tenant=ten_1")
		if list.status != 200 || !strings.Contains(list.body, entry.ID[:20]) || strings.Contains(list.body, "sealed-marker-42") {
			t.Fatalf("lookup: %d", list.status)
		}
		page := b.get("/console/reqlog/" + entry.ID)
		if page.status != 200 || !strings.Contains(page.body, `id="decrypt-form"`) || strings.Contains(page.body, "sealed-marker-42") {
			t.Fatalf("entry page: %d", page.status)
		}
		tok := csrfOf(page.body)
		for _, c := range []struct{ reason, ticket, field string }{
			{"", "SUP-9", "reason"}, {"short", "SUP-9", "reason"}, {"customer jane@example.com reports 401", "SUP-9", "reason"},
			{"customer reports a 401 on the feed", "", "ticket"},
		} {
			before := e.auditCount()
			r := b.post("/console/reqlog/"+entry.ID+"/decrypt", url.Values{"csrf": {tok}, "reason": {c.reason}, "ticket": {c.ticket}})
			if r.status != http.StatusBadRequest || strings.Contains(r.body, "sealed-marker-42") || !strings.Contains(r.body, `id="`+c.field+`"`) {
				t.Fatalf("%+v: %d", c, r.status)
			}
			mustRefusal(t, e, before, "reqlog.decrypt", "no valid reason")
		}
		before := e.auditCount()
		r := b.post("/console/reqlog/"+entry.ID+"/decrypt", url.Values{"csrf": {tok}, "reason": {"customer reports a 401 on the feed"}, "ticket": {"SUP-9"}})
		if r.status != 200 || !strings.Contains(r.body, "sealed-marker-42") || !strings.Contains(r.body, "$top=7") || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("decrypt: %d %.300s", r.status, r.body)
		}
		last := e.lastAudit()
		tp, _ := e.trail.TenantPseudonym(context.Background(), "ten_1")
		if e.auditCount() != before+1 || last.Action != "reqlog.decrypt" || last.Outcome != audit.Allowed || last.Actor != "sue" || last.Role != "support" ||
			last.Reason != "customer reports a 401 on the feed" || last.Ticket != "SUP-9" || last.Object != entry.ID || last.TenantPseudonym != tp {
			t.Errorf("recorded %+v", last)
		}
		// An auditor sees the decryption on the audit page.
		e.member("aud", staff.Auditor)
		a := e.browser()
		a.mustSignIn("aud")
		ap := a.get("/console/audit?verify=1")
		if ap.status != 200 || !strings.Contains(ap.body, "customer reports a 401 on the feed") || !strings.Contains(ap.body, "SUP-9") || !strings.Contains(ap.body, `id="verify-ok"`) {
			t.Errorf("audit page: %d", ap.status)
		}
		// Expired entries say so.
		old := "20200101-00000000000000000000000000000000"
		if r := b.get("/console/reqlog/" + old); r.status != http.StatusGone || !strings.Contains(r.body, "retention") {
			t.Errorf("expired entry: %d", r.status)
		}
	})
}

func TestTenantsInventoryAndSubprocessorsShowLiveData(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	ctx := context.Background()
	inst, _, err := e.tenants.Install(ctx, tenant.Install{AddonKey: "ferry", ProductType: "jira", ClientKey: "ck-1", BaseURL: "https://acme.atlassian.net",
		SharedSecret: []byte("canary-shared-secret-0042")})
	if err != nil {
		t.Fatal(err)
	}
	e.tick(48 * time.Hour)
	if _, err := e.tenants.Uninstall(ctx, inst.TenantID); err != nil {
		t.Fatal(err)
	}
	e.member("sup", staff.Support)
	b := e.browser()
	b.mustSignIn("sup")
	tp := b.get("/console/tenants")
	if tp.status != 200 || !strings.Contains(tp.body, inst.TenantID) || !strings.Contains(tp.body, "pending_deletion") ||
		!strings.Contains(tp.body, e.now.Format(time.DateOnly)) || strings.Contains(tp.body, "canary-shared-secret-0042") {
		t.Errorf("tenants page: %d", tp.status)
	}
	inv := b.get("/console/inventory")
	// One installation made two days ago; the audit trail holds rows too.
	if inv.status != 200 || !strings.Contains(inv.body, `<td class="num">1</td><td>2 days`) {
		t.Errorf("inventory: %d %s", inv.status, inv.body)
	}
	sp := b.get("/console/subprocessors")
	if sp.status != 200 || !strings.Contains(sp.body, "Amazon Web Services") || !strings.Contains(sp.body, "Functional Software") {
		t.Errorf("subprocessors: %d", sp.status)
	}
}

func TestAdminAddsAndDisablesStaffThroughTheConsole(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	e.member("ada", staff.Admin)
	b := e.browser()
	b.mustSignIn("ada")
	tok := b.pageCSRF()
	end := e.now.AddDate(0, 3, 0).Format(time.DateOnly)
	r := b.post("/console/staff", url.Values{"csrf": {tok}, "username": {"sub1"}, "role": {"developer"}, "subcontractor": {"on"},
		"company": {"Contractor GmbH"}, "contract_ref": {"C-7"}, "contract_end": {end}})
	if r.status != 200 || !strings.Contains(r.body, e.srv.URL+"/console/enrol/") {
		t.Fatalf("add: %d %.500s", r.status, r.body)
	}
	// The link enrols through the page.
	link := r.body[strings.Index(r.body, e.srv.URL+"/console/enrol/"):]
	link = link[len(e.srv.URL):strings.Index(link, "<")]
	nb := e.browser()
	en := nb.get(link)
	if en.status != 200 || !strings.Contains(en.body, "data:image/png;base64,") || !strings.Contains(en.body, "Contractor GmbH") {
		t.Fatalf("enrol page: %d", en.status)
	}
	secret := en.body[strings.Index(en.body, `id="totp-secret">`)+len(`id="totp-secret">`):]
	secret = secret[:strings.Index(secret, "<")]
	code, _ := staff.TOTPCode(secret, e.now)
	if r := nb.post(link, url.Values{"csrf": {csrfOf(en.body)}, "password": {password}, "password2": {password + "x"}, "code": {code}}); r.status != 400 {
		t.Errorf("mismatched passwords: %d", r.status)
	}
	if r := nb.post(link, url.Values{"csrf": {csrfOf(en.body)}, "password": {password}, "password2": {password}, "code": {code}}); r.status != 200 || !strings.Contains(r.body, `id="enrolled"`) {
		t.Fatalf("enrol: %d %.300s", r.status, r.body)
	}
	e.secrets["sub1"] = secret
	nb.mustSignIn("sub1")
	if r := nb.get("/console/"); !strings.Contains(r.body, "subcontractor of Contractor GmbH") {
		t.Error("overview does not say subcontractor")
	}
	// Bad input names its field and adds nothing.
	if r := b.post("/console/staff", url.Values{"csrf": {tok}, "username": {"x@y.com"}, "role": {"support"}}); r.status != 400 || !strings.Contains(r.body, "not an email address") {
		t.Errorf("bad user name: %d", r.status)
	}
	acc, _ := e.staff.ByUsername(context.Background(), "sub1")
	if r := b.post("/console/staff/"+acc.ID+"/disable", url.Values{"csrf": {tok}}); r.status != 200 {
		t.Fatalf("disable: %d", r.status)
	}
	if r := nb.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("disabled member still signed in: %d", r.status)
	}
}

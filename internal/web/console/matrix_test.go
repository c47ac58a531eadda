package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"ferry/internal/audit"
	"ferry/internal/staff"
	"ferry/internal/store/storetest"
	"ferry/internal/web/console"
)

var (
	all         = []staff.Role{staff.Admin, staff.Support, staff.Developer, staff.Billing, staff.Auditor}
	supportDev  = []staff.Role{staff.Support, staff.Developer}
	adminOnly   = []staff.Role{staff.Admin}
	adminSup    = []staff.Role{staff.Admin, staff.Support}
	adminAudit  = []staff.Role{staff.Admin, staff.Auditor}
	exampleID   = "20260601-00000000000000000000000000000000"
	exampleUser = "stf_doesnotexist"
	exampleBak  = "20260601t090000z-abcdef"
)

// pageMatrix is who may open each console page and perform each data
// action, written from issue 15 and the statement independently of the code:
// admin (staff and configuration), support (tenant Account Data, request
// logs with a reason), developer (request logs with a reason), billing
// (billing data: no page built yet), auditor (read-only: audit trail, staff
// and roles). Scrubbed error events (issue 18): developer, whose work they
// are, and support, who matches them to the problems customers report — the
// statement's "support and development teams"; not admin, billing or
// auditor, whose work they are not. Backups (issue 19): admin and auditor
// see them (configuration; the verify report), only admin backs up or runs a
// drill (read-only for auditor). A registered page missing here fails the
// test: whoever adds a page decides who may open it, here, in writing.
var pageMatrix = map[string]struct {
	roles []staff.Role
	path  string // the path to request (route parameters filled in)
}{
	"GET /console/{$}":                  {all, "/console/"},
	"POST /console/logout":              {all, "/console/logout"},
	"GET /console/tenants":              {adminSup, "/console/tenants"},
	"GET /console/inventory":            {all, "/console/inventory"},
	"GET /console/reqlog":               {supportDev, "/console/reqlog"},
	"GET /console/reqlog/{id}":          {supportDev, "/console/reqlog/" + exampleID},
	"POST /console/reqlog/{id}/decrypt": {supportDev, "/console/reqlog/" + exampleID + "/decrypt"},
	"GET /console/staff":                {adminAudit, "/console/staff"},
	"POST /console/staff":               {adminOnly, "/console/staff"},
	"POST /console/staff/{id}/disable":  {adminOnly, "/console/staff/" + exampleUser + "/disable"},
	"GET /console/subprocessors":        {all, "/console/subprocessors"},
	"GET /console/audit":                {adminAudit, "/console/audit"},
	"GET /console/errors":               {supportDev, "/console/errors"},
	"GET /console/errors/{id}":          {supportDev, "/console/errors/1"},
	"GET /console/backups":              {adminAudit, "/console/backups"},
	"POST /console/backups/run":         {adminOnly, "/console/backups/run"},
	"POST /console/backups/{id}/verify": {adminOnly, "/console/backups/" + exampleBak + "/verify"},
}

// TestAuthorizationMatrixOverEveryConsolePage signs in one member of each
// role and requests every registered page and action: allowed cells are
// served (or fail on their input), refused cells answer 403 and leave a
// refusal in the audit trail. Signed out, every page sends to sign-in.
func TestAuthorizationMatrixOverEveryConsolePage(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	browsers := map[staff.Role]*browser{}
	for _, r := range staff.Roles() {
		user := "m-" + string(r)
		e.member(user, r)
		b := e.browser()
		b.mustSignIn(user)
		browsers[r] = b
	}
	pages := e.c.Pages()
	if len(pages) < len(pageMatrix) {
		t.Errorf("%d pages registered, the matrix names %d: a page disappeared", len(pages), len(pageMatrix))
	}
	cells := 0
	for _, p := range pages {
		want, ok := pageMatrix[p.Route]
		if !ok {
			t.Errorf("page %s (permission %s) has no row in the authorization matrix test: decide which roles may open it and add it", p.Route, p.Permission)
			continue
		}
		// The code's matrix must agree with the written one for this page.
		if got := staff.RolesWith(p.Permission); !slices.Equal(got, want.roles) {
			t.Errorf("%s needs %s, held by %v; the matrix test says %v", p.Route, p.Permission, got, want.roles)
		}
		method := strings.Fields(p.Route)[0]
		for _, role := range staff.Roles() {
			cells++
			b := browsers[role]
			before := e.auditCount()
			var r resp
			if method == http.MethodGet {
				r = b.get(want.path)
			} else {
				tok := b.pageCSRF()
				before = e.auditCount()
				r = b.post(want.path, url.Values{"csrf": {tok}})
			}
			allowed := slices.Contains(want.roles, role)
			switch {
			case allowed && r.status == http.StatusForbidden:
				t.Errorf("%s as %s: 403, want allowed: %.200s", p.Route, role, r.body)
			case allowed && (r.status == http.StatusUnauthorized || (r.status == http.StatusSeeOther && strings.HasPrefix(r.header.Get("Location"), "/console/login") && p.Route != "POST /console/logout")):
				t.Errorf("%s as %s: signed out? %d %s", p.Route, role, r.status, r.header.Get("Location"))
			case !allowed && r.status != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403", p.Route, role, r.status)
			case !allowed:
				last := e.lastAudit()
				if e.auditCount() <= before || last.Action != "console.forbidden" || last.Outcome != audit.Refused || last.Actor != "m-"+string(role) ||
					last.Object != p.Route {
					t.Errorf("%s as %s: refusal not recorded (last row %+v)", p.Route, role, last)
				}
			}
			if p.Route == "POST /console/logout" && allowed {
				browsers[role] = e.browser()
				browsers[role].mustSignIn("m-" + string(role))
			}
		}
	}
	if cells != len(pages)*len(staff.Roles()) {
		t.Errorf("checked %d cells of %d", cells, len(pages)*len(staff.Roles()))
	}

	// Signed out: every GET page sends to sign-in, every action is 401.
	anon := e.browser()
	for _, p := range pages {
		want := pageMatrix[p.Route]
		if strings.HasPrefix(p.Route, "GET ") {
			if r := anon.get(want.path); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/login?next=") {
				t.Errorf("%s signed out: %d %s", p.Route, r.status, r.header.Get("Location"))
			}
		} else if r := anon.post(want.path, url.Values{}); r.status != http.StatusUnauthorized {
			t.Errorf("%s signed out: %d, want 401", p.Route, r.status)
		}
	}
	// Public routes are reachable signed out.
	for _, rt := range e.c.PublicRoutes() {
		if !strings.HasPrefix(rt, "GET ") || strings.Contains(rt, "{") || strings.Contains(rt, "/sso") {
			continue
		}
		if r := anon.get(strings.TrimPrefix(rt, "GET ")); r.status != http.StatusOK {
			t.Errorf("public %s: %d", rt, r.status)
		}
	}
}

// A page whose permission the matrix does not know cannot be registered.
func TestPagesNeedAPermissionTheMatrixKnows(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	defer func() {
		if recover() == nil {
			t.Error("a page with an unknown permission was registered")
		}
	}()
	e.c.Register(console.Page{Route: "GET /console/billing", Title: "Billing", Permission: "billing.view",
		Handle: func(http.ResponseWriter, *http.Request, staff.Principal) {}})
}

// A page registered by a later area is walked by the matrix test like the
// built-in ones: the same guard serves it, and roles without its permission
// get 403.
func TestRegisteredPagesGetTheSameGuard(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	e.c.Register(console.Page{Route: "GET /console/later", Title: "Later area", Permission: staff.ViewAuditTrail, Nav: true,
		Handle: func(w http.ResponseWriter, r *http.Request, p staff.Principal) {
			w.Write([]byte("later page for " + p.Username))
		}})
	e.srv.Config.Handler = e.c.Handler()
	e.member("aud", staff.Auditor)
	e.member("dev", staff.Developer)
	a, d := e.browser(), e.browser()
	a.mustSignIn("aud")
	d.mustSignIn("dev")
	if r := a.get("/console/later"); r.status != 200 || r.body != "later page for aud" {
		t.Errorf("auditor: %d %q", r.status, r.body)
	}
	if r := d.get("/console/later"); r.status != http.StatusForbidden {
		t.Errorf("developer: %d", r.status)
	}
	if r := a.get("/console/"); !strings.Contains(r.body, `href="/console/later"`) {
		t.Error("the new page is not in the auditor's navigation")
	}
	if r := d.get("/console/"); strings.Contains(r.body, `href="/console/later"`) {
		t.Error("the developer's navigation links to a page they may not open")
	}
}

package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/audit"
	"ferry/internal/egress"
	"ferry/internal/reqlog"
	"ferry/internal/staff"
	"ferry/internal/tenant"
)

func auditEvent(p staff.Principal, action, category, object string) audit.Event {
	return audit.Event{Actor: p.Username, Role: string(p.Role), Action: action, Category: category, Object: object, Outcome: audit.Allowed}
}

// registerBuiltins registers the console's own pages, in navigation order.
func (c *Console) registerBuiltins() {
	c.initPublic()
	c.Register(Page{Route: "GET /console/{$}", Title: "Overview", Permission: staff.UseConsole, Nav: true, Handle: c.handleOverview})
	c.Register(Page{Route: "POST /console/logout", Permission: staff.UseConsole, Handle: c.handleLogout})
	c.Register(Page{Route: "GET /console/tenants", Title: "Tenants", Permission: staff.ViewTenants, Nav: true, Handle: c.handleTenants})
	c.Register(Page{Route: "GET /console/inventory", Title: "Data inventory", Permission: staff.ViewInventory, Nav: true, Handle: c.handleInventory})
	c.Register(Page{Route: "GET /console/reqlog", Title: "Request log", Permission: staff.ViewRequestLog, Nav: true, Handle: c.handleReqlog})
	c.Register(Page{Route: "GET /console/reqlog/{id}", Permission: staff.ViewRequestLog, Handle: c.handleReqlogEntry})
	c.Register(Page{Route: "POST /console/reqlog/{id}/decrypt", Permission: staff.DecryptRequestLog, Handle: c.handleReqlogDecrypt})
	if c.d.Errors != nil {
		c.Register(Page{Route: "GET /console/errors", Title: "Error events", Permission: staff.ViewErrors, Nav: true, Handle: c.handleErrors})
		c.Register(Page{Route: "GET /console/errors/{id}", Permission: staff.ViewErrors, Handle: c.handleErrorEvent})
	}
	c.Register(Page{Route: "GET /console/staff", Title: "Staff and roles", Permission: staff.ViewStaff, Nav: true, Handle: c.handleStaff})
	c.Register(Page{Route: "POST /console/staff", Permission: staff.ManageStaff, Handle: c.handleStaffAdd})
	c.Register(Page{Route: "POST /console/staff/{id}/disable", Permission: staff.ManageStaff, Handle: c.handleStaffDisable})
	c.Register(Page{Route: "GET /console/subprocessors", Title: "Subprocessors", Permission: staff.ViewSubprocessors, Nav: true, Handle: c.handleSubprocessors})
	c.Register(Page{Route: "GET /console/audit", Title: "Audit trail", Permission: staff.ViewAuditTrail, Nav: true, Handle: c.handleAudit})
	if c.d.Backups != nil {
		c.Register(Page{Route: "GET /console/backups", Title: "Backups", Permission: staff.ViewBackups, Nav: true, Handle: c.handleBackups})
		c.Register(Page{Route: "POST /console/backups/run", Permission: staff.RunBackups, Handle: c.handleBackupNow})
		c.Register(Page{Route: "POST /console/backups/{id}/verify", Permission: staff.RunBackups, Handle: c.handleBackupVerify})
	}
}

var overviewTmpl = page("overview.html")

type overviewData struct {
	Permissions []staff.PermissionInfo
	Expires     time.Time
}

func (c *Console) handleOverview(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	var mine []staff.PermissionInfo
	for _, i := range staff.Permissions() {
		if p.Can(i.Permission) {
			mine = append(mine, i)
		}
	}
	c.Render(w, r, &p, overviewTmpl, http.StatusOK, "Overview", overviewData{Permissions: mine, Expires: p.SignedInAt.Add(staff.AbsoluteTimeout)})
}

var tenantsTmpl = page("tenants.html")

func (c *Console) handleTenants(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	ts, err := c.d.Tenants.All(r.Context())
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	counts := map[tenant.State]int{}
	for _, t := range ts {
		counts[t.State]++
	}
	c.Render(w, r, &p, tenantsTmpl, http.StatusOK, "Tenants", struct {
		Tenants []tenant.Installation
		Counts  map[tenant.State]int
	}{ts, counts})
}

var inventoryTmpl = page("inventory.html")

func (c *Console) handleInventory(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	rows, err := c.inventory(r.Context())
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	c.Render(w, r, &p, inventoryTmpl, http.StatusOK, "Data inventory", rows)
}

var (
	reqlogTmpl          = page("reqlog.html")
	reqlogEntryTmpl     = page("reqlog-entry.html")
	reqlogDecryptedTmpl = page("reqlog-decrypted.html")
)

type reqlogData struct {
	Tenant, Since string
	Days          int
	Entries       []reqlog.Entry
	Searched      bool
}

func (c *Console) handleReqlog(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, "/console/reqlog/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	d := reqlogData{Tenant: strings.TrimSpace(q.Get("tenant")), Since: strings.TrimSpace(q.Get("since")), Days: c.d.Config.RequestLogDays}
	if d.Tenant != "" {
		d.Searched = true
		from := reqlog.Cutoff(c.d.Staff.Now(), d.Days)
		if d.Since != "" {
			t, err := time.Parse(time.DateOnly, d.Since)
			if err != nil {
				c.errorPage(w, r, &p, apperr.Invalid("since", "a day as YYYY-MM-DD"))
				return
			}
			from = t
		}
		tn := d.Tenant
		if tn == "-" {
			tn = ""
		}
		es, err := c.d.Requests.List(r.Context(), tn, from, 200)
		if err != nil {
			c.errorPage(w, r, &p, err)
			return
		}
		d.Entries = es
	}
	c.Render(w, r, &p, reqlogTmpl, http.StatusOK, "Request log", d)
}

type entryData struct {
	Entry      reqlog.Entry
	CanDecrypt bool
	Reason     string
	Ticket     string
	Message    string
	Field      string
	Request    reqlog.Request
	Grant      string
}

func (c *Console) entry(w http.ResponseWriter, r *http.Request, p staff.Principal) (reqlog.Entry, bool) {
	e, err := c.d.Requests.Get(r.Context(), r.PathValue("id"), c.d.Config.RequestLogDays)
	switch {
	case errors.Is(err, reqlog.ErrExpired):
		c.errorPage(w, r, &p, apperr.New(apperr.EGONE, "this request is past the %d-day retention window: its entry is deleted and its day key destroyed, so nobody can read it any more", c.d.Config.RequestLogDays))
		return e, false
	case errors.Is(err, reqlog.ErrNotFound):
		c.errorPage(w, r, &p, apperr.New(apperr.ENOTFOUND, "no request-log entry with this id"))
		return e, false
	case err != nil:
		c.errorPage(w, r, &p, err)
		return e, false
	}
	return e, true
}

func (c *Console) handleReqlogEntry(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	e, ok := c.entry(w, r, p)
	if !ok {
		return
	}
	c.Render(w, r, &p, reqlogEntryTmpl, http.StatusOK, "Request "+e.ID, entryData{Entry: e, CanDecrypt: p.Can(staff.DecryptRequestLog)})
}

// handleReqlogDecrypt is break-glass: the reason and ticket are recorded
// (staff.BreakGlass) before the request is decrypted, and the plaintext is
// shown in this response only, never stored or cached.
func (c *Console) handleReqlogDecrypt(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	e, ok := c.entry(w, r, p)
	if !ok {
		return
	}
	reason, ticket := r.PostFormValue("reason"), r.PostFormValue("ticket")
	g, err := c.d.Staff.BreakGlass(r.Context(), p, staff.DecryptRequestLog, staff.Target{Tenant: e.TenantID, Object: e.ID}, reason, ticket)
	if err != nil {
		d := entryData{Entry: e, CanDecrypt: true, Reason: reason, Ticket: ticket, Message: apperr.ProblemOf(err).Detail}
		var ae *apperr.Error
		if errors.As(err, &ae) {
			d.Field = ae.Field
		}
		c.Render(w, r, &p, reqlogEntryTmpl, apperr.Status(apperr.CodeOf(err)), "Request "+e.ID, d)
		return
	}
	_, req, err := c.d.Requests.DecryptRequest(r.Context(), g, e.ID, c.d.Config.RequestLogDays)
	if errors.Is(err, reqlog.ErrExpired) {
		c.errorPage(w, r, &p, apperr.New(apperr.EGONE, "this request's day key was destroyed by retention: nobody can read it any more"))
		return
	}
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	c.Render(w, r, &p, reqlogDecryptedTmpl, http.StatusOK, "Request "+e.ID+" (decrypted)",
		entryData{Entry: e, Request: req, Reason: strings.TrimSpace(reason), Ticket: strings.TrimSpace(ticket)})
}

var staffTmpl = page("staff.html")

type staffData struct {
	Accounts    []staff.Account
	CanManage   bool
	Roles       []staff.Role
	Permissions []staff.PermissionInfo
	EnrolLink   string
	EnrolFor    string
	Message     string
	Field       string
	Form        staff.NewAccount
	Flash       string
}

// Matrix reports whether role holds perm, for the staff page's table.
func (staffData) Matrix(r staff.Role, p staff.Permission) bool { return r.Can(p) }

func (c *Console) staffPage(w http.ResponseWriter, r *http.Request, p staff.Principal, status int, d staffData) {
	as, err := c.d.Staff.List(r.Context())
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	d.Accounts, d.CanManage, d.Roles, d.Permissions = as, p.Can(staff.ManageStaff), staff.Roles(), staff.Permissions()
	c.Render(w, r, &p, staffTmpl, status, "Staff and roles", d)
}

func (c *Console) handleStaff(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	c.staffPage(w, r, p, http.StatusOK, staffData{})
}

func (c *Console) handleStaffAdd(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	n := staff.NewAccount{Username: r.PostFormValue("username"), DisplayName: r.PostFormValue("display_name"),
		Role: staff.Role(r.PostFormValue("role")), Subcontractor: r.PostFormValue("subcontractor") == "on",
		Company: r.PostFormValue("company"), ContractRef: r.PostFormValue("contract_ref"), ContractEnd: r.PostFormValue("contract_end")}
	a, tok, err := c.d.Staff.Add(r.Context(), p.Actor(), n)
	if err != nil {
		d := staffData{Message: apperr.ProblemOf(err).Detail, Form: n}
		var ae *apperr.Error
		if errors.As(err, &ae) {
			d.Field = ae.Field
		}
		c.staffPage(w, r, p, apperr.Status(apperr.CodeOf(err)), d)
		return
	}
	c.staffPage(w, r, p, http.StatusOK, staffData{EnrolLink: c.EnrolURL(tok), EnrolFor: a.Username})
}

// EnrolURL is the one-time enrolment link for a token.
func (c *Console) EnrolURL(token string) string {
	return c.d.Config.ConsoleBaseURL() + "/console/enrol/" + token
}

func (c *Console) handleStaffDisable(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	id := r.PathValue("id")
	if id == p.ID {
		c.staffPage(w, r, p, http.StatusBadRequest, staffData{Message: "you cannot disable your own account; ask another admin"})
		return
	}
	if err := c.d.Staff.Disable(r.Context(), p.Actor(), id); err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	c.staffPage(w, r, p, http.StatusOK, staffData{Flash: "Account disabled; its sessions ended."})
}

var subprocessorsTmpl = page("subprocessors.html")

func (c *Console) handleSubprocessors(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	c.Render(w, r, &p, subprocessorsTmpl, http.StatusOK, "Subprocessors", struct {
		Subs []egress.Subprocessor
	}{c.d.Subprocessors.All()})
}

var auditTmpl = page("audit.html")

type auditData struct {
	Rows     []audit.Record
	Report   *audit.Report
	Tenant   string
	Next     int64
	Verified bool
	Target   string
}

func (c *Console) handleAudit(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	ctx := r.Context()
	q := r.URL.Query()
	f := audit.Filter{Limit: 50}
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil {
		f.Before = b
	}
	d := auditData{Tenant: strings.TrimSpace(q.Get("tenant"))}
	if d.Tenant != "" {
		tp, err := c.d.Audit.TenantPseudonym(ctx, d.Tenant)
		if err != nil {
			c.errorPage(w, r, &p, err)
			return
		}
		f.TenantPseudonym = tp
	}
	if c.d.Audit.Target() != nil {
		d.Target = c.d.Audit.Target().Describe()
	}
	if q.Get("verify") == "1" {
		rep, err := c.d.Audit.Verify(ctx)
		if err != nil {
			c.errorPage(w, r, &p, err)
			return
		}
		d.Report, d.Verified = &rep, true
	}
	rows, err := c.d.Audit.List(ctx, f)
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	d.Rows = rows
	if len(rows) == f.Limit {
		d.Next = rows[len(rows)-1].Seq
	}
	c.Render(w, r, &p, auditTmpl, http.StatusOK, "Audit trail", d)
}

// PrincipalFrom returns the signed-in staff member of a console request.
func PrincipalFrom(ctx context.Context) (staff.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(staff.Principal)
	return p, ok
}

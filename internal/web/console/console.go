// Package console is the staff console (/console on its own listener,
// FERRY_CONSOLE_ADDR): where the vendor's staff see tenants, the data
// inventory, request logs, staff and roles, subprocessors and the audit
// trail — each page only for the roles the authorization matrix
// (internal/staff) allows, every refusal and every break-glass access
// recorded in the audit trail (internal/audit).
//
// Pages are server-rendered from embedded templates, one file per page, and
// readable without JavaScript (the console serves none). Each page is
// registered with its route, title and required permission (Register);
// later areas add theirs the same way, and the authorization matrix test
// walks every registered page, so a page nobody decided about fails it.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/audit"
	"ferry/internal/backup"
	"ferry/internal/config"
	"ferry/internal/egress"
	"ferry/internal/errortrack"
	"ferry/internal/reqlog"
	"ferry/internal/staff"
	"ferry/internal/store"
	"ferry/internal/tenant"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Tenants lists installations for the tenants page.
type Tenants interface {
	All(ctx context.Context) ([]tenant.Installation, error)
}

// Deps is what the console reads and writes through.
type Deps struct {
	Config        config.Config
	Log           *slog.Logger
	DB            *store.DB // the inventory counts rows
	Staff         *staff.Store
	Audit         *audit.Trail
	Requests      *reqlog.Store
	Tenants       Tenants
	Subprocessors egress.Registry
	Inventory     []InventoryItem
	SSO           *SSO // nil: password + TOTP only

	Errors         *errortrack.Store // scrubbed error events; nil: no error events page
	ErrorsUpstream string            // where they are forwarded, without the key (ErrorsUpstreamOf); "": kept locally only
	Backups        *backup.Service   // nil: no backups page
}

// Page is one console page or form action.
type Page struct {
	Route      string           // method and path pattern, e.g. "GET /console/tenants"
	Title      string           // shown in the navigation when Nav is set
	Permission staff.Permission // what the signed-in staff member's role must hold
	Nav        bool             // listed in the navigation
	Handle     func(w http.ResponseWriter, r *http.Request, p staff.Principal)
}

// Console serves the staff console.
type Console struct {
	d      Deps
	log    *slog.Logger
	secure bool // cookies Secure and __Host- prefixed: the console is reached over HTTPS

	mu     sync.Mutex
	pages  []Page
	public []string // routes anyone may open: sign-in, enrolment, static files

	limiter *limiter
	tasks   *tasks // backups and drills started from the console
}

// New returns the console with its built-in pages registered.
func New(d Deps) *Console {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{d: d, log: d.Log, secure: strings.HasPrefix(d.Config.ConsoleBaseURL(), "https://"),
		limiter: newLimiter(loginAttempts, loginWindow), tasks: newTasks()}
	c.registerBuiltins()
	return c
}

// Register adds a page. Its permission must be one the authorization matrix
// knows: a page nobody decided about is a programming error.
func (c *Console) Register(p Page) {
	if _, ok := staff.LookupPermission(p.Permission); !ok {
		panic(fmt.Sprintf("console: page %s needs permission %q, which the authorization matrix does not know", p.Route, p.Permission))
	}
	if !strings.Contains(p.Route, " /console/") || p.Handle == nil {
		panic("console: page route must be \"METHOD /console/…\" with a handler: " + p.Route)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.pages {
		if q.Route == p.Route {
			panic("console: page registered twice: " + p.Route)
		}
	}
	c.pages = append(c.pages, p)
}

// Pages returns the registered pages (the authorization matrix test walks them).
func (c *Console) Pages() []Page {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pages)
}

// PublicRoutes are the routes served without a signed-in session.
func (c *Console) PublicRoutes() []string { return slices.Clone(c.public) }

// Routes registers every page and public route on mux.
func (c *Console) Routes(mux *http.ServeMux) {
	for _, p := range c.Pages() {
		mux.Handle(p.Route, c.guard(p))
	}
	for _, rt := range c.publicHandlers() {
		mux.Handle(rt.route, rt.h)
	}
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusSeeOther))
}

// Handler is the console's whole handler: routes, cross-origin protection
// and its security headers (internal/server adds body limits, metrics and
// panic recovery around the same).
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	c.Routes(mux)
	return c.Protect(mux)
}

// Protect wraps the console's routes in cross-origin protection (a refusal
// is recorded) and its security headers.
func (c *Console) Protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.refuse(r.Context(), staff.Actor{Name: "anonymous"}, "console.csrf", r.Method+" "+r.URL.Path, "cross-origin request refused")
		c.errorPage(w, r, nil, apperr.New(apperr.EFORBIDDEN, "cross-origin request refused"))
	}))
	return c.headers(cop.Handler(h))
}

// csp: the console's own stylesheet, images inline only for the enrolment
// QR code, no scripts at all, forms only to itself, never framed.
const csp = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (c *Console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/console/static/") {
			h.Set("Cache-Control", "no-store") // pages show what only their reader may see
		}
		if c.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// Cookie names. Over HTTPS the session cookie takes the __Host- prefix,
// which browsers accept only with Secure, Path=/ and no Domain. Over plain
// HTTP — allowed only on a loopback address (config.validateConsole) — it
// can be neither Secure nor __Host-, since browsers would drop it.
func (c *Console) sessionCookie() string {
	if c.secure {
		return "__Host-ferry_console"
	}
	return "ferry_console"
}

func (c *Console) ssoCookie() string {
	if c.secure {
		return "__Host-ferry_console_sso"
	}
	return "ferry_console_sso"
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge int, same http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: c.secure, SameSite: same, MaxAge: maxAge})
}

func (c *Console) clearCookie(w http.ResponseWriter, name string) {
	c.setCookie(w, name, "", -1, http.SameSiteStrictMode)
}

func cookie(r *http.Request, name string) string {
	if ck, err := r.Cookie(name); err == nil {
		return ck.Value
	}
	return ""
}

type principalKey struct{}

// guard authenticates the session, checks the page's permission and, for
// anything but GET, the form's CSRF token. Each refusal is recorded.
func (c *Console) guard(p Page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tok := cookie(r, c.sessionCookie())
		pr, err := c.d.Staff.Authenticate(ctx, tok)
		if err != nil {
			if tok != "" && errors.Is(err, staff.ErrNoSession) {
				// A cookie that names no signed-in session: stale, forged, or
				// planted before sign-in (session fixation). Never accepted.
				c.refuse(ctx, staff.Actor{Name: "anonymous"}, "console.session", p.Route, "cookie names no signed-in session")
				c.clearCookie(w, c.sessionCookie())
			} else if !errors.Is(err, staff.ErrNoSession) && !errors.Is(err, staff.ErrSessionExpired) {
				c.errorPage(w, r, nil, err)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+safeNext(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, nil, apperr.New(apperr.EUNAUTHORIZED, "sign in first"))
			return
		}
		if !pr.Can(p.Permission) {
			c.refuse(ctx, pr.Actor(), "console.forbidden", p.Route, "role "+string(pr.Role)+" lacks "+string(p.Permission))
			c.errorPage(w, r, &pr, apperr.New(apperr.EFORBIDDEN, "your role (%s) may not open this page: it needs %s", pr.Role, describe(p.Permission)))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !pr.CheckCSRF(r.PostFormValue("csrf")) {
				c.refuse(ctx, pr.Actor(), "console.csrf", p.Route, "form without a valid CSRF token")
				c.errorPage(w, r, &pr, apperr.New(apperr.EFORBIDDEN, "this form has expired or did not come from the console; reload the page and try again"))
				return
			}
		}
		p.Handle(w, r.WithContext(context.WithValue(ctx, principalKey{}, pr)), pr)
	})
}

func describe(p staff.Permission) string {
	if i, ok := staff.LookupPermission(p); ok {
		return string(p) + ", to " + i.Doc
	}
	return string(p)
}

// safeNext keeps a post-sign-in redirect on the console.
func safeNext(u string) string {
	if !strings.HasPrefix(u, "/console/") || strings.HasPrefix(u, "//") || strings.ContainsAny(u, "\\\r\n") {
		return "/console/"
	}
	return u
}

// refuse records a refusal; a failure to record is logged (the refusal
// stands either way).
func (c *Console) refuse(ctx context.Context, by staff.Actor, action, object, why string) {
	if err := c.d.Audit.Record(ctx, audit.Event{Actor: by.Name, Role: string(by.Role), Action: action, Category: "Staff console",
		Object: object, Reason: why, Outcome: audit.Refused}); err != nil {
		c.log.Error("console: cannot record a refusal", "action", action, "err", err)
	}
}

// view is what every page template sees.
type view struct {
	Title   string
	Me      *staff.Principal
	Nav     []navItem
	CSRF    string
	Flash   string
	Error   *apperr.Problem
	Data    any
	Now     time.Time
	Current string
}

type navItem struct {
	Path, Title string
}

// nav lists the GET pages the principal may open, in registration order.
func (c *Console) nav(p *staff.Principal) []navItem {
	if p == nil {
		return nil
	}
	var out []navItem
	for _, pg := range c.Pages() {
		if pg.Nav && p.Can(pg.Permission) {
			out = append(out, navItem{Path: strings.TrimPrefix(pg.Route, "GET "), Title: pg.Title})
		}
	}
	return out
}

var funcs = template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return humanAge(now.Sub(t))
	},
	"day":  func(t time.Time) string { return dayOrDash(t) },
	"when": func(t time.Time) string { return whenOrDash(t) },
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
	"asset": func(name string) string { return "/console/static/" + name },
	"bytes": backup.Size,
	"every": func(d time.Duration) string {
		switch {
		case d == 24*time.Hour:
			return "day"
		case d%time.Hour == 0:
			return fmt.Sprintf("%d hours", int(d.Hours()))
		case d%time.Minute == 0:
			return fmt.Sprintf("%d minutes", int(d.Minutes()))
		}
		return d.String()
	},
	"until": func(now, t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		if !t.After(now) {
			return "due"
		}
		return "in " + humanAge(t.Sub(now))
	},
}

func dayOrDash(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(time.DateOnly)
}

func whenOrDash(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
}

// ParsePage parses a page template (its "content" block) from fsys with the
// console's layout. Later areas keep their page file in their own package.
func ParsePage(fsys fs.FS, name string) *template.Template {
	t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	return template.Must(t.ParseFS(fsys, name))
}

func page(name string) *template.Template { return ParsePage(templateFS, "templates/"+name) }

// Render writes a page with the layout.
func (c *Console) Render(w http.ResponseWriter, r *http.Request, p *staff.Principal, t *template.Template, status int, title string, data any) {
	v := view{Title: title, Me: p, Nav: c.nav(p), Data: data, Now: c.d.Staff.Now(), Current: r.URL.Path}
	if p != nil {
		v.CSRF = p.CSRF
	}
	c.render(w, t, status, v)
}

func (c *Console) render(w http.ResponseWriter, t *template.Template, status int, v view) {
	var buf strings.Builder
	if err := t.Execute(&buf, v); err != nil {
		c.log.Error("console: template", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(buf.String()))
}

var errorTmpl = page("error.html")

// errorPage shows an error as a page with its status; internal errors keep
// their cause in the (redacted) log.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, p *staff.Principal, err error) {
	pr := apperr.ProblemOf(err)
	if pr.Status >= 500 {
		c.log.Error("console: request failed", "route", r.Pattern, "err", err)
	}
	v := view{Title: pr.Title, Me: p, Nav: c.nav(p), Error: &pr, Now: c.d.Staff.Now()}
	if p != nil {
		v.CSRF = p.CSRF
	}
	c.render(w, errorTmpl, pr.Status, v)
}

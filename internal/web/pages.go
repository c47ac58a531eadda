// Package web serves the app's pages inside Jira: the data sources page
// (a general page) and the admin page. The server renders only the frame of
// each page and a short-lived context token; static/app.js fetches and shows
// everything else through the JSON API (/app-api/), as the signed-in user.
//
// It keeps three promises of the Data Security & Privacy Statement where the
// user sees them: no cookies, tracking beacons or third-party assets (the
// pages' CSP allows only Ferry's own origin and Atlassian's Connect script,
// which Jira — the parent product — requires; nothing here sets a cookie);
// people are shown by display name only, never by email address (P10); and
// the pages hold no Customer Data beyond what the user's own browser fetches
// to show (P1).
package web

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"ferry/internal/apperr"
	"ferry/internal/atlassian"
	"ferry/internal/config"
)

//go:embed templates/*.html
var templateFS embed.FS

// Pages serves the app's pages and their static assets.
type Pages struct {
	Connect *atlassian.Connect
	Config  config.Config
	Log     *slog.Logger

	ErrorTracking ErrorTracking // the Sentry browser SDK's settings; zero: not loaded
}

// ErrorTracking configures the Sentry browser SDK the pages load
// (static/sentry.js, started by static/sentry-init.js) so that errors of the
// app's code in the user's browser reach Ferry's scrubbing relay.
type ErrorTracking struct {
	DSN     string // Ferry's own ingest, e.g. https://KEY@ferry.example.com/errors/1; "" turns it off
	Release string
}

// sentryData is what sentry-init.js reads from its script tag: the DSN and
// release, and which tenant and user (as Ferry's per-tenant pseudonym,
// never an accountId or email) an error happened for.
type sentryData struct {
	DSN, Release, Tenant, User string
}

// Routes registers the pages (behind Connect page JWT auth) and the static
// assets on mux.
func (p *Pages) Routes(mux *http.ServeMux) {
	csp := PageCSP(p.Config)
	mux.Handle("GET "+atlassian.PageDataSources, p.Connect.RequirePage(p.handlePage(pageTemplates["data-sources"], csp)))
	mux.Handle("GET "+atlassian.PageAdmin, p.Connect.RequirePage(p.handlePage(pageTemplates["admin"], csp)))
	mux.Handle("GET /static/{file}", handleStatic())
}

// pageTemplates are parsed once, at start-up: a page is the layout plus its
// own "content" block.
var pageTemplates = map[string]*template.Template{
	"data-sources": mustPage("data-sources.html"),
	"admin":        mustPage("admin.html"),
}

func mustPage(name string) *template.Template {
	return template.Must(template.New("layout.html").Funcs(template.FuncMap{"asset": assetURL}).
		ParseFS(templateFS, "templates/layout.html", "templates/"+name))
}

// pageData is everything a page template sees. It holds no person's name
// or email: the display name arrives later through /app-api/me.
type pageData struct {
	Forge      bool   // a Custom UI page (customui.go): no token, assets beside it, the API through invokeRemote
	Token      string // context token for /app-api/ calls (ContextTokenTTL)
	ConnectJS  string // Atlassian's all.js: Jira waits for it to show (and size) the frame
	Unlicensed string // atlassian.UnlicensedMessage when Jira says the site is unlicensed
	Sentry     *sentryData
}

func (p *Pages) handlePage(t *template.Template, csp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, ok := atlassian.PrincipalFrom(r.Context())
		if !ok {
			apperr.Write(w, r, p.Log, apperr.New(apperr.EUNAUTHORIZED, "open this page from Jira"))
			return
		}
		tok, err := p.Connect.MintContextToken(r.Context(), pr.Installation, pr.AccountID)
		if err != nil {
			apperr.Write(w, r, p.Log, apperr.Wrap(err, apperr.EINTERNAL, "cannot mint a context token"))
			return
		}
		d := pageData{Token: tok, ConnectJS: p.Config.ConnectJSURL}
		if et := p.ErrorTracking; et.DSN != "" {
			d.Sentry = &sentryData{DSN: et.DSN, Release: et.Release, Tenant: pr.Installation.TenantID, User: pr.UserPseudonym}
		}
		if !pr.PageLicensed() {
			d.Unlicensed = atlassian.UnlicensedMessage
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, d); err != nil {
			apperr.Write(w, r, p.Log, apperr.Wrap(err, apperr.EINTERNAL, "page template"))
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Content-Type", "text/html; charset=utf-8")
		// The page embeds a token: never cache it, anywhere.
		h.Set("Cache-Control", "no-store")
		w.Write(buf.Bytes())
	})
}

// PageCSP is the Content-Security-Policy of the app's pages: only Ferry's
// own scripts, styles and API — plus Atlassian's Connect script, which Jira
// requires of every app page (it tells the host frame the page has loaded
// and sizes it) — no inline code, and framing only by the Jira sites Ferry
// accepts installs from.
func PageCSP(cfg config.Config) string {
	scripts := "'self'"
	if o := scriptOrigin(cfg.ConnectJSURL); o != "" {
		scripts += " " + o
	}
	return "default-src 'none'; script-src " + scripts + "; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors " + frameAncestors(cfg)
}

// scriptOrigin is the origin of the Connect script URL, for the CSP.
func scriptOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(u.Host, " ;,'") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// frameAncestors turns FERRY_CONNECT_ALLOWED_HOSTS into CSP sources: Jira
// Cloud sites are https; a loopback pattern (the simulator, the demo) is
// http and only when FERRY_EGRESS_ALLOW_LOOPBACK is set.
func frameAncestors(cfg config.Config) string {
	var srcs []string
	for _, pat := range cfg.ConnectAllowedHosts {
		pat = strings.ToLower(strings.TrimSpace(pat))
		if pat == "" || strings.ContainsAny(pat, " ;,'\"/") {
			continue // not a host pattern: never let it widen the policy
		}
		host, port := pat, ""
		if h, pt, err := net.SplitHostPort(pat); err == nil {
			host, port = h, pt
		}
		src := "https://"
		if isLoopback(host) {
			if !cfg.AllowLoopback {
				continue
			}
			src = "http://"
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		src += host
		if port != "" {
			src += ":" + port
		}
		if !slices.Contains(srcs, src) {
			srcs = append(srcs, src)
		}
	}
	if len(srcs) == 0 {
		return "'none'"
	}
	return strings.Join(srcs, " ")
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

package server

import (
	"context"
	"net/http"

	"ferry/internal/export"
	"ferry/internal/forge"
	"ferry/internal/web/console"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves GET /metrics (Prometheus) and nothing else. It runs on
// its own listener (FERRY_METRICS_ADDR, loopback by default), never the public
// one: route counts, error rates and egress refusals are for operators only.
func MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	return mux
}

// addRoutes lists every route Ferry serves.
func addRoutes(mux *http.ServeMux, d Deps) {
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d))
	// GET /metrics is not here: MetricsHandler serves it on FERRY_METRICS_ADDR.

	// Atlassian Connect: descriptor and signed lifecycle callbacks.
	if c := d.Connect; c != nil {
		mux.Handle("GET /atlassian-connect.json", c.HandleDescriptor())
		mux.Handle("POST /lifecycle/installed", c.HandleInstalled())
		mux.Handle("POST /lifecycle/uninstalled", c.HandleUninstalled())
		mux.Handle("POST /lifecycle/enabled", c.HandleEnabled())
		mux.Handle("POST /lifecycle/disabled", c.HandleDisabled())
	}

	// The connector: feeds for BI tools (access-token auth) and the JSON API
	// behind the app's pages (Connect JWT auth).
	if f := d.Feeds; f != nil {
		mux.Handle("GET /odata/{source}", f.HandleOData())
		mux.Handle("GET /odata/{source}/{rest...}", f.HandleOData())
		mux.Handle("GET /export/{source}/{table}", f.HandleCSV())
	}
	if a := d.App; a != nil && d.Connect != nil {
		a.Routes(mux, "/app-api", d.Connect.RequireAPI, export.ConnectCaller)
	}

	// Error tracking: Sentry SDKs post envelopes (and legacy store events)
	// here; Ferry scrubs them and forwards them to the upstream Sentry.
	if e := d.Errors; e != nil {
		e.Routes(mux)
	}

	// The app's pages inside Jira (Connect page JWT auth) and their static
	// files: GET /app/data-sources, GET /app/admin, GET /static/{file}.
	if p := d.Pages; p != nil {
		p.Routes(mux)
	}

	// Forge Remote: every route verifies a Forge Invocation Token. The
	// lifecycle events, the hourly trigger and preUninstall, and the same
	// JSON API as /app-api/ for the Custom UI's invokeRemote calls.
	if f := d.Forge; f != nil {
		mux.Handle("POST "+forge.RouteLifecycle, f.HandleLifecycle())
		mux.Handle("POST "+forge.RouteTrigger, f.HandleTrigger())
		mux.Handle("POST "+forge.RoutePreUninstall, f.HandlePreUninstall())
		if a := d.App; a != nil {
			a.Routes(mux, forge.RouteAPI, f.RequireUI, forgeCaller)
		}
	}
}

// forgeCaller reads the caller of a Custom UI call that RequireUI verified.
func forgeCaller(ctx context.Context) (export.Caller, bool) {
	c, ok := forge.From(ctx)
	if !ok || c.Invocation == nil {
		return export.Caller{}, false
	}
	return export.Caller{Installation: c.Installation, AccountID: c.Invocation.Principal, UserPseudonym: c.Pseudonym}, true
}

// addConsoleRoutes lists the staff console's routes, served on its own
// listener (FERRY_CONSOLE_ADDR). Each page is registered in
// internal/web/console with its route, title and required permission
// (Console.Pages); sign-in, enrolment and its stylesheet are public.
func addConsoleRoutes(mux *http.ServeMux, c *console.Console) {
	c.Routes(mux)
}

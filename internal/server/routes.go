package server

import (
	"net/http"

	"ferry/internal/export"
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
}

// addConsoleRoutes lists the staff console's routes, served on its own
// listener (FERRY_CONSOLE_ADDR). Each page is registered in
// internal/web/console with its route, title and required permission
// (Console.Pages); sign-in, enrolment and its stylesheet are public.
func addConsoleRoutes(mux *http.ServeMux, c *console.Console) {
	c.Routes(mux)
}

package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes lists every route Ferry serves.
func addRoutes(mux *http.ServeMux, d Deps) {
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d))
	mux.Handle("GET /metrics", promhttp.Handler())

	// Atlassian Connect: descriptor and signed lifecycle callbacks.
	if c := d.Connect; c != nil {
		mux.Handle("GET /atlassian-connect.json", c.HandleDescriptor())
		mux.Handle("POST /lifecycle/installed", c.HandleInstalled())
		mux.Handle("POST /lifecycle/uninstalled", c.HandleUninstalled())
		mux.Handle("POST /lifecycle/enabled", c.HandleEnabled())
		mux.Handle("POST /lifecycle/disabled", c.HandleDisabled())
	}

	// The app's pages inside Jira (Connect page JWT auth) and their static
	// files: GET /app/data-sources, GET /app/admin, GET /static/{file}.
	if p := d.Pages; p != nil {
		p.Routes(mux)
	}
}

package atlassian

import (
	"encoding/json"
	"net/http"
)

// Descriptor page modules. The page handlers belong to the connector; the
// descriptor lists them so that Jira shows them.
const (
	PageDataSources = "/app/data-sources"
	PageAdmin       = "/app/admin"
)

type i18n struct {
	Value string `json:"value"`
}

type pageModule struct {
	Key      string `json:"key"`
	Name     i18n   `json:"name"`
	URL      string `json:"url"`
	Location string `json:"location,omitempty"`
}

// Descriptor is the Connect app descriptor served at /atlassian-connect.json.
func (c *Connect) Descriptor() map[string]any {
	return map[string]any{
		"key":         c.cfg.AddonKey,
		"name":        "Ferry BI Connector",
		"description": "Stream Jira data into Power BI, Excel, Tableau or any OData v4 / CSV client. Ferry keeps none of it.",
		"vendor":      map[string]string{"name": "Ferry", "url": c.appBaseURL()},
		"baseUrl":     c.appBaseURL(),
		"links":       map[string]string{"self": c.appBaseURL() + "/atlassian-connect.json"},
		"authentication": map[string]string{
			"type": "jwt",
		},
		"lifecycle": map[string]string{
			"installed":   "/lifecycle/installed",
			"uninstalled": "/lifecycle/uninstalled",
			"enabled":     "/lifecycle/enabled",
			"disabled":    "/lifecycle/disabled",
		},
		// signed-install: installed/uninstalled arrive RS256-signed by
		// Atlassian, so nobody holding an old shared secret can forge a
		// reinstall.
		"apiMigrations":   map[string]bool{"signed-install": true},
		"enableLicensing": true,
		"scopes":          []string{"READ", "ACT_AS_USER"},
		"modules": map[string]any{
			"generalPages": []pageModule{
				{Key: "data-sources", Name: i18n{"BI data sources"}, URL: PageDataSources, Location: "system.top.navigation.bar"},
			},
			"adminPages": []pageModule{
				{Key: "admin", Name: i18n{"Ferry BI Connector"}, URL: PageAdmin},
			},
		},
	}
}

// HandleDescriptor serves the descriptor.
func (c *Connect) HandleDescriptor() http.Handler {
	body, _ := json.MarshalIndent(c.Descriptor(), "", "  ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(body)
	})
}

package forge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/template"
)

// The Forge manifest (forge/manifest.yml), written by `ferry forge manifest`
// from Ferry's configuration, ready for `forge deploy` and `forge install`:
//   - one remote, Ferry itself, at FERRY_BASE_URL (with a baseUrl per data
//     residency region when FERRY_FORGE_REGION_URLS names them), declaring
//     the compute it does and that it stores no in-scope end-user data;
//   - endpoint modules for the Custom UI (app user and system tokens), the
//     lifecycle events, the hourly scheduled trigger and preUninstall (the
//     system token), pointing at the routes this package serves;
//   - the admin page and the global page as Custom UI from forge/static;
//   - scopes: the product read scopes with allowImpersonation (feeds read as
//     the token's owner with no user in session), storage:app, the two token
//     scopes, and the Connect scopes the bridge keeps;
//   - licensing, and app.connect.key with the Connect lifecycle in
//     connectModules, so a site that installed Ferry through Connect moves
//     to this app and Ferry learns its installationId with its clientKey.

// ManifestOptions are what the manifest says about the deployment.
type ManifestOptions struct {
	AppID      string            // FERRY_FORGE_APP_ID
	BaseURL    string            // FERRY_BASE_URL: the remote and the Connect baseUrl
	RegionURLs map[string]string // FERRY_FORGE_REGION_URLS: region → URL
	AddonKey   string            // FERRY_ADDON_KEY: app.connect.key
}

// Module keys and resources of the manifest; the simulator's tests find the
// pages by these keys.
const (
	RemoteKey          = "ferry"
	ModuleDataSources  = "ferry-data-sources"
	ModuleAdmin        = "ferry-admin"
	EndpointUI         = "ferry-ui"
	EndpointLifecycle  = "ferry-lifecycle"
	EndpointTrigger    = "ferry-trigger"
	EndpointUninstall  = "ferry-uninstall"
	ResourceDataSource = "data-sources"
	ResourceAdmin      = "admin"
)

// ReadScopes are the product scopes Ferry reads Jira with; each allows
// offline impersonation.
var ReadScopes = []string{"read:jira-work", "read:jira-user"}

var manifestTmpl = template.Must(template.New("manifest").Funcs(template.FuncMap{"q": quote}).Parse(
	`# Ferry BI Connector as a Forge app whose backend is Ferry (Forge Remote).
# Written by "ferry forge manifest" from Ferry's configuration: change the
# configuration and run it again rather than editing this file.
app:
  id: {{q .AppID}}
  runtime:
    name: nodejs22.x
  licensing:
    enabled: true
  connect:
    key: {{q .AddonKey}}
    remote: {{.Remote}}
    authentication: jwt
modules:
  jira:globalPage:
    - key: {{.ModuleDataSources}}
      title: BI data sources
      resource: {{.ResourceDataSource}}
      resolver:
        endpoint: {{.EndpointUI}}
  jira:adminPage:
    - key: {{.ModuleAdmin}}
      title: Ferry BI Connector
      resource: {{.ResourceAdmin}}
      resolver:
        endpoint: {{.EndpointUI}}
  endpoint:
    # The Custom UI's invokeRemote calls: the user's and the app's tokens.
    - key: {{.EndpointUI}}
      remote: {{.Remote}}
      auth:
        appUserToken:
          enabled: true
        appSystemToken:
          enabled: true
    # avi:forge:installed:app and avi:forge:upgraded:app.
    - key: {{.EndpointLifecycle}}
      remote: {{.Remote}}
      route:
        path: {{q .RouteLifecycle}}
      auth:
        appSystemToken:
          enabled: true
    # Hourly: the fresh system token (at least two hours) that lets feeds
    # read Jira with no invocation in flight.
    - key: {{.EndpointTrigger}}
      remote: {{.Remote}}
      route:
        path: {{q .RouteTrigger}}
      auth:
        appSystemToken:
          enabled: true
    - key: {{.EndpointUninstall}}
      remote: {{.Remote}}
      route:
        path: {{q .RoutePreUninstall}}
      auth:
        appSystemToken:
          enabled: true
  trigger:
    - key: ferry-lifecycle-events
      endpoint: {{.EndpointLifecycle}}
      events:
        - avi:forge:installed:app
        - avi:forge:upgraded:app
  scheduledTrigger:
    - key: ferry-hourly
      endpoint: {{.EndpointTrigger}}
      interval: hour
  preUninstall:
    - key: ferry-pre-uninstall
      endpoint: {{.EndpointUninstall}}
connectModules:
  # The Connect lifecycle the bridge keeps: a site moving from Connect sends
  # installed with its clientKey and its Forge installationId together.
  jira:lifecycle:
    - key: ferry-connect-lifecycle
      installed: /lifecycle/installed
      uninstalled: /lifecycle/uninstalled
      enabled: /lifecycle/enabled
      disabled: /lifecycle/disabled
remotes:
  - key: {{.Remote}}
{{- if .Regions}}
    baseUrl:
      default: {{q .BaseURL}}
{{- range .Regions}}
      {{.Region}}: {{q .URL}}
{{- end}}
{{- else}}
    baseUrl: {{q .BaseURL}}
{{- end}}
    # Ferry processes Jira data on its way to a BI tool and stores none of
    # it: data sources live in Forge storage, issue data nowhere.
    operations:
      - compute
      - storage
    storage:
      inScopeEUD: false
resources:
  - key: {{.ResourceDataSource}}
    path: static/data-sources
  - key: {{.ResourceAdmin}}
    path: static/admin
permissions:
  scopes:
{{- range .ReadScopes}}
    {{.}}:
      allowImpersonation: true
{{- end}}
    storage:app: {}
    read:app-system-token: {}
    read:app-user-token: {}
    read:connect-jira: {}
    act-as-user:connect-jira: {}
`))

// quote writes a YAML double-quoted scalar (JSON's string syntax is one).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Manifest renders the manifest.
func Manifest(o ManifestOptions) ([]byte, error) {
	if !ValidAppID(o.AppID) {
		return nil, errors.New("FERRY_FORGE_APP_ID must be the app's id, ari:cloud:ecosystem::app/UUID (forge register prints it)")
	}
	if err := checkRemoteURL(o.BaseURL); err != nil {
		return nil, fmt.Errorf("FERRY_BASE_URL: %w", err)
	}
	type region struct{ Region, URL string }
	var regions []region
	for r, u := range o.RegionURLs {
		if err := checkRemoteURL(u); err != nil {
			return nil, fmt.Errorf("FERRY_FORGE_REGION_URLS: %s: %w", r, err)
		}
		regions = append(regions, region{strings.ToUpper(r), strings.TrimSuffix(u, "/")})
	}
	sort.Slice(regions, func(i, j int) bool { return regions[i].Region < regions[j].Region })
	var buf bytes.Buffer
	err := manifestTmpl.Execute(&buf, map[string]any{
		"AppID": o.AppID, "AddonKey": o.AddonKey, "BaseURL": strings.TrimSuffix(o.BaseURL, "/"), "Regions": regions,
		"Remote": RemoteKey, "ModuleDataSources": ModuleDataSources, "ModuleAdmin": ModuleAdmin,
		"EndpointUI": EndpointUI, "EndpointLifecycle": EndpointLifecycle, "EndpointTrigger": EndpointTrigger, "EndpointUninstall": EndpointUninstall,
		"ResourceDataSource": ResourceDataSource, "ResourceAdmin": ResourceAdmin,
		"RouteLifecycle": RouteLifecycle, "RouteTrigger": RouteTrigger, "RoutePreUninstall": RoutePreUninstall,
		"ReadScopes": ReadScopes,
	})
	return buf.Bytes(), err
}

// checkRemoteURL: Forge calls remotes over HTTPS (plain http is for a
// loopback simulator only), at a URL without query or fragment.
func checkRemoteURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", s)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
		return fmt.Errorf("%q must be https: Forge calls remotes over HTTPS", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q must not carry a query, fragment or user info", s)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1" || strings.HasPrefix(h, "127.")
}

package jirasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

const (
	maxPropertyValue = 32768
	maxPropertyKey   = 127
	maxReportBatch   = 90
)

// ownApp checks the caller is the app named in the path, authenticated by
// its own JWT: app properties belong to that app alone.
func ownApp(w http.ResponseWriter, r *http.Request, p *principal) bool {
	if p.kind == "forge-app" && p.connectKey != "" && p.connectKey == r.PathValue("addonKey") {
		// Connect on Forge: the Forge app reads its Connect properties (same
		// app.connect.key); the docs document no Forge writes.
		if r.Method == http.MethodGet {
			return true
		}
		opMessage(w, http.StatusForbidden, "A Forge app may read, but not write, the properties of the Connect app it was migrated from.")
		return false
	}
	if p.kind != "app" || p.addonKey != r.PathValue("addonKey") {
		opMessage(w, http.StatusUnauthorized, "Access to this resource must be authenticated as the app that owns it.")
		return false
	}
	return true
}

func (s *Sim) propertySelf(addon, key string) string {
	return s.BaseURL() + "/rest/atlassian-connect/1/addons/" + url.PathEscape(addon) + "/properties/" + url.PathEscape(key)
}

func (s *Sim) handlePropertyKeys(w http.ResponseWriter, r *http.Request, p *principal) {
	if !ownApp(w, r, p) {
		return
	}
	addon := r.PathValue("addonKey")
	s.mu.RLock()
	keys := make([]string, 0, len(s.props[addon]))
	for k := range s.props[addon] {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	type key struct {
		Key  string `json:"key"`
		Self string `json:"self"`
	}
	out := struct {
		Keys []key `json:"keys"`
	}{Keys: []key{}}
	for _, k := range keys {
		out.Keys = append(out.Keys, key{k, s.propertySelf(addon, k)})
	}
	chargeObjects(w, len(out.Keys))
	writeJSON(w, http.StatusOK, out)
}

func validPropertyKey(w http.ResponseWriter, key string) bool {
	if key == "" || utf8.RuneCountInString(key) > maxPropertyKey {
		opMessage(w, http.StatusBadRequest, fmt.Sprintf("The property key must be between 1 and %d characters long.", maxPropertyKey))
		return false
	}
	return true
}

func (s *Sim) handleGetProperty(w http.ResponseWriter, r *http.Request, p *principal) {
	if !ownApp(w, r, p) {
		return
	}
	addon, key := r.PathValue("addonKey"), r.PathValue("propertyKey")
	if !validPropertyKey(w, key) {
		return
	}
	s.mu.RLock()
	v, ok := s.props[addon][key]
	s.mu.RUnlock()
	if !ok {
		opMessage(w, http.StatusNotFound, fmt.Sprintf("Property with key '%s' does not exist.", key))
		return
	}
	chargeObjects(w, 1)
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "value": json.RawMessage(v)})
}

func (s *Sim) handlePutProperty(w http.ResponseWriter, r *http.Request, p *principal) {
	if !ownApp(w, r, p) {
		return
	}
	addon, key := r.PathValue("addonKey"), r.PathValue("propertyKey")
	if !validPropertyKey(w, key) {
		return
	}
	body, err := readBody(r)
	switch {
	case err != nil || len(body) > maxPropertyValue:
		opMessage(w, http.StatusBadRequest, fmt.Sprintf("The property value must not be longer than %d bytes.", maxPropertyValue))
		return
	case len(strings.TrimSpace(string(body))) == 0 || !json.Valid(body):
		opMessage(w, http.StatusBadRequest, "The property value has to be a valid, non-empty JSON value.")
		return
	}
	s.mu.Lock()
	if s.props[addon] == nil {
		s.props[addon] = map[string][]byte{}
	}
	_, existed := s.props[addon][key]
	s.props[addon][key] = body
	s.mu.Unlock()
	if existed {
		opMessage(w, http.StatusOK, "Property updated.")
		return
	}
	opMessage(w, http.StatusCreated, "Property created.")
}

func (s *Sim) handleDeleteProperty(w http.ResponseWriter, r *http.Request, p *principal) {
	if !ownApp(w, r, p) {
		return
	}
	addon, key := r.PathValue("addonKey"), r.PathValue("propertyKey")
	if !validPropertyKey(w, key) {
		return
	}
	s.mu.Lock()
	_, ok := s.props[addon][key]
	delete(s.props[addon], key)
	s.mu.Unlock()
	if !ok {
		opMessage(w, http.StatusNotFound, fmt.Sprintf("Property with key '%s' does not exist.", key))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAddon answers the app's license query: the app itself (or a site
// admin) sees its state; "none" omits the license object as Jira does for
// free apps.
func (s *Sim) handleAddon(w http.ResponseWriter, r *http.Request, p *principal) {
	addon := r.PathValue("addonKey")
	isAdmin := p.kind == "user" && s.data.users[p.user].Admin
	if p.addonKey != addon && !isAdmin {
		opMessage(w, http.StatusUnauthorized, "Only the app itself or a site administrator may read this app's details.")
		return
	}
	in, ok := s.Installation(addon)
	if !ok {
		opMessage(w, http.StatusNotFound, fmt.Sprintf("The app '%s' is not installed.", addon))
		return
	}
	state := "ENABLED"
	if !in.Enabled {
		state = "DISABLED"
	}
	out := map[string]any{
		"key": in.AddonKey, "version": "1.0.0", "state": state,
		"host": map[string]any{"product": "Jira", "contact": s.data.users[0].Email},
		"links": map[string]any{
			"self": []map[string]string{{"href": s.BaseURL() + "/rest/atlassian-connect/1/addons/" + url.PathEscape(addon)}},
		},
	}
	if in.License != "none" {
		out["license"] = map[string]any{
			"active": in.License == "active", "type": "COMMERCIAL", "evaluation": false,
			"supportEntitlementNumber": in.SEN, "entitlementNumber": in.EntitlementNumber,
		}
	}
	chargeObjects(w, 1)
	writeJSON(w, http.StatusOK, out)
}

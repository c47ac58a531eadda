package jirasim

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

//go:embed page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.ParseFS(pageFS, "page.html"))

var contextVar = regexp.MustCompile(`\{[^{}]*\}`)

// PageURL returns the signed iframe URL Jira would load for an app page
// module: the module url resolved against the app's base URL, context
// variables substituted (empty: a general page has no project or issue),
// Jira's standard parameters and a jwt (HS256, iss=clientKey,
// sub=accountID, qsh of this URL).
func (s *Sim) PageURL(addonKey, moduleKey, accountID string) (string, error) {
	in, ok := s.Installation(addonKey)
	if !ok {
		return "", errNotInstalled
	}
	var mod *Module
	for k := range in.Modules {
		if in.Modules[k].Key == moduleKey {
			mod = &in.Modules[k]
		}
	}
	if mod == nil {
		return "", fmt.Errorf("jirasim: app %q has no page module %q", addonKey, moduleKey)
	}
	ui, ok := s.data.byAcct[accountID]
	if !ok {
		return "", fmt.Errorf("jirasim: no user %q", accountID)
	}
	u, err := url.Parse(in.AppBaseURL + contextVar.ReplaceAllString(mod.URL, ""))
	if err != nil {
		return "", err
	}
	lic := "none"
	if in.License == "active" {
		lic = "active"
	}
	q := u.Query()
	q.Set("xdm_e", in.BaseURL)
	q.Set("xdm_c", "channel-"+addonKey+"__"+moduleKey)
	q.Set("cp", "")
	q.Set("xdm_deprecated_addon_key_do_not_use", addonKey)
	q.Set("lic", lic)
	q.Set("cv", "1001.0.0-SNAPSHOT")
	q.Set("tz", s.data.users[ui].TimeZone)
	q.Set("loc", "en-US")
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	qsh, err := qshOfURL(http.MethodGet, u.String(), in.AppBaseURL)
	if err != nil {
		return "", err
	}
	now := s.now().Unix()
	tok, err := signJWT(jwtHeader{Alg: "HS256", Typ: "JWT"},
		map[string]any{"iss": in.ClientKey, "sub": accountID, "iat": now, "exp": now + 180, "qsh": qsh, "context": map[string]any{}},
		hs256([]byte(in.SharedSecret)))
	if err != nil {
		return "", err
	}
	u.RawQuery += "&jwt=" + tok
	return u.String(), nil
}

// handleJiraPage renders a stand-in for Jira's chrome around an app page,
// with a user switcher (?as=accountId). No auth: it is a test fixture.
func (s *Sim) handleJiraPage(w http.ResponseWriter, r *http.Request) {
	addon, module := r.PathValue("addonKey"), r.PathValue("moduleKey")
	as := r.URL.Query().Get("as")
	if as == "" {
		as = s.data.users[0].AccountID
	}
	src, err := s.PageURL(addon, module, as)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	type option struct {
		AccountID, Name string
		Selected        bool
	}
	var users []option
	var current string
	for _, u := range s.data.users {
		if u.Closed {
			continue
		}
		users = append(users, option{u.AccountID, u.DisplayName, u.AccountID == as})
		if u.AccountID == as {
			current = u.DisplayName
		}
	}
	in, _ := s.Installation(addon)
	title := module
	for _, m := range in.Modules {
		if m.Key == module {
			title = m.Name
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, map[string]any{
		"Title": title, "Src": template.URL(src), "Users": users, "Current": current, "Path": r.URL.Path,
	})
}

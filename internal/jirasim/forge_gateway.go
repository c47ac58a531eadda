package jirasim

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// The product API as a Forge remote reaches it: app.apiBaseUrl is
// https://api.atlassian.com/ex/jira/{cloudId} on Atlassian and
// {sim}/ex/jira/{cloudId} here. Behind the prefix are the same REST
// resources, handlers and permission checks as on the site URL, but the
// gateway takes only Forge bearer tokens (system, user or offline) and the
// site URL takes none of them.

type gatewayKey struct{}

func viaGateway(r *http.Request) bool { return r.Context().Value(gatewayKey{}) != nil }

func (s *Sim) handleExJira(w http.ResponseWriter, r *http.Request) {
	cloud := r.PathValue("cloudId")
	if cloud != s.CloudID() {
		jiraError(w, http.StatusNotFound, fmt.Sprintf("No Jira site with cloudId %q is reachable here.", cloud))
		return
	}
	prefix := "/ex/jira/" + cloud
	esc := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(esc, prefix)
	if !ok || !strings.HasPrefix(rest, "/rest/") {
		jiraError(w, http.StatusNotFound, "null for uri: "+r.URL.Path)
		return
	}
	r2 := r.Clone(context.WithValue(r.Context(), gatewayKey{}, cloud))
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
	r2.URL.RawPath = ""
	if r2.URL.EscapedPath() != rest {
		r2.URL.RawPath = rest
	}
	r2.RequestURI = r2.URL.RequestURI()
	s.mux.ServeHTTP(w, r2)
}

// authGateway accepts a live Forge token of an installed app.
func (s *Sim) authGateway(r *http.Request) (*principal, error) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if cred == "" && scheme == "" {
		return nil, errNoCredentials
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, fmt.Errorf("the API gateway accepts only OAuth 2.0 bearer tokens, not %q", scheme)
	}
	ft, in, err := s.forgeTokenOf(cred)
	if err != nil {
		return nil, err
	}
	p, err := s.forgePrincipal(ft, in)
	if err != nil {
		return nil, err
	}
	f := s.forge
	f.mu.Lock()
	f.count(&f.stats.GatewayCalls, ft.kind)
	f.mu.Unlock()
	return p, nil
}

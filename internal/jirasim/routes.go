package jirasim

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// routes lists every endpoint the simulator serves.
func (s *Sim) routes() {
	m := http.NewServeMux()
	rest := func(pattern string, h func(http.ResponseWriter, *http.Request, *principal)) {
		m.Handle(pattern, s.rest(pattern, h))
	}
	rest("GET /rest/api/3/search/jql", s.handleSearch)
	rest("POST /rest/api/3/search/jql", s.handleSearch)
	rest("POST /rest/api/3/search/approximate-count", s.handleApproximateCount)
	rest("GET /rest/api/3/search", s.handleSearchGone)
	rest("POST /rest/api/3/search", s.handleSearchGone)
	rest("GET /rest/api/2/search", s.handleSearchGone)
	rest("POST /rest/api/2/search", s.handleSearchGone)
	rest("POST /rest/api/3/issue/bulkfetch", s.handleBulkFetch)
	rest("POST /rest/api/3/changelog/bulkfetch", s.handleChangelogBulkFetch)
	rest("POST /rest/api/3/issue", s.handleCreateIssue)
	rest("GET /rest/api/3/issue/{issueIdOrKey}", s.handleGetIssue)
	rest("GET /rest/api/3/field", s.handleFields)
	rest("GET /rest/api/3/project/search", s.handleProjectSearch)
	rest("GET /rest/api/3/myself", s.handleMyself)
	rest("GET /rest/api/3/serverInfo", s.handleServerInfo)
	rest("GET /rest/api/2/serverInfo", s.handleServerInfo)
	rest("GET /rest/api/3/user", s.handleUser)
	rest("GET /rest/api/3/user/bulk", s.handleUserBulk)
	rest("GET /rest/api/3/user/groups", s.handleUserGroups)
	rest("GET /rest/api/3/groups/picker", s.handleGroupsPicker)
	rest("GET /rest/api/3/user/search", s.handleUserSearch)
	rest("GET /rest/api/3/mypermissions", s.handleMyPermissions)
	s.modelRoutes(rest)
	rest("GET /rest/atlassian-connect/1/addons/{addonKey}", s.handleAddon)
	rest("GET /rest/atlassian-connect/1/addons/{addonKey}/properties", s.handlePropertyKeys)
	rest("GET /rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", s.handleGetProperty)
	rest("PUT /rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", s.handlePutProperty)
	rest("DELETE /rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", s.handleDeleteProperty)
	rest("POST /rest/atlassian-connect/latest/report-accounts", s.handleReportAccounts)
	rest("POST /rest/atlassian-connect/1/report-accounts", s.handleReportAccounts)
	m.Handle("/rest/", s.rest("unknown", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		jiraError(w, http.StatusNotFound, "null for uri: "+s.BaseURL()+r.URL.Path)
	}))

	m.Handle("POST /oauth2/token", s.edge("POST /oauth2/token", s.handleOAuthToken))
	m.HandleFunc("GET /connect-install-keys/{kid}", s.handleInstallKey)
	m.HandleFunc("GET /jira/apps/{addonKey}/{moduleKey}", s.handleJiraPage)
	m.HandleFunc("GET /atlassian-connect/all.js", handleConnectJS)
	s.controlRoutes(m)
	s.forgeRoutes(m)
	s.mux = m
}

// edge wraps endpoints with the realism knobs and counters, but no auth.
func (s *Sim) edge(endpoint string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stats.begin(endpoint)
		defer s.stats.end()
		k := s.getKnobs()
		if !sleep(r.Context(), k.Latency+s.faults.jitter(k.Jitter)) {
			return
		}
		switch f := s.faults.draw(k.FaultRate); f {
		case fault500:
			s.stats.add(func(st *Stats) { st.Faults[f.String()]++ })
			jiraError(w, http.StatusInternalServerError, "Internal server error")
			return
		case fault503:
			s.stats.add(func(st *Stats) { st.Faults[f.String()]++ })
			w.Header().Set("Retry-After", "1")
			jiraError(w, http.StatusServiceUnavailable, "Service unavailable")
			return
		case faultDrop:
			s.stats.add(func(st *Stats) { st.Faults[f.String()]++ })
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return
			}
			jiraError(w, http.StatusBadGateway, "Connection dropped")
			return
		case faultSlow:
			s.stats.add(func(st *Stats) { st.Faults[f.String()]++ })
			w = &slowWriter{ResponseWriter: w, ctx: r.Context(), pause: max(50*time.Millisecond, 2*k.Latency)}
		}
		h(w, r)
	})
}

// rest adds authentication, the hourly points quota (quota.go) and the
// per tenant×endpoint burst limit, and charges each answer its points.
func (s *Sim) rest(endpoint string, h func(http.ResponseWriter, *http.Request, *principal)) http.Handler {
	return s.edge(endpoint, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.stats.add(func(st *Stats) { st.Unauthorized++ })
			msgs := []string{notAuthenticated}
			if err != errNoCredentials {
				msgs = append(msgs, err.Error())
			}
			jiraError(w, http.StatusUnauthorized, msgs...)
			return
		}
		now := s.now()
		m := &metered{ResponseWriter: w, s: s, p: p, kind: p.kind, now: now}
		ok, st := s.quotas.admit(s.quotas.poolKey(p), now)
		m.refused = st.quota > 0 && st.remaining <= 0
		if !ok {
			// All requests are denied until the window resets.
			q := s.quotas.get()
			_, reason := q.policy()
			s.stats.add(func(st *Stats) { st.Throttled[endpoint]++; st.ThrottledBy[reason]++ })
			quotaHeaders(w.Header(), q, st, now, true)
			m.charged = true
			jiraError(w, http.StatusTooManyRequests, "Rate limit exceeded.")
			return
		}
		if rate := s.getKnobs().Rate; rate > 0 {
			ok, limit, remaining, wait := s.limits.take(p.tenant()+" "+endpoint, rate, math.Max(1, rate), now)
			rateHeaders(w.Header(), limit, remaining, now.Add(wait).Add(time.Minute).Truncate(time.Minute))
			burstHeaders(w.Header(), limit, remaining)
			if !ok {
				s.stats.add(func(st *Stats) { st.RateLimited++; st.Throttled[endpoint]++; st.ThrottledBy[reasonBurst]++ })
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				w.Header().Set("RateLimit-Reason", reasonBurst)
				m.charged = true
				jiraError(w, http.StatusTooManyRequests, "Rate limit exceeded.")
				return
			}
		}
		h(m, r, p)
	})
}

func (s *Sim) handleSearchGone(w http.ResponseWriter, r *http.Request, _ *principal) {
	jiraError(w, http.StatusGone, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
}

package jirasim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// The /_sim/ control API drives the simulator from outside the process
// (ferry sim install, the demo, browser tests). It is unauthenticated: the
// sim is a test fixture and must never face the internet.

func (s *Sim) controlRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]bool{"ok": true}) })
	m.HandleFunc("GET /_sim/users", s.ctlUsers)
	m.HandleFunc("POST /_sim/users/access", s.ctlUserAccess)
	m.HandleFunc("POST /_sim/install", s.ctlInstall)
	m.HandleFunc("POST /_sim/enable", s.ctlAddon(s.Enable))
	m.HandleFunc("POST /_sim/disable", s.ctlAddon(s.Disable))
	m.HandleFunc("POST /_sim/uninstall", s.ctlAddon(s.Uninstall))
	m.HandleFunc("GET /_sim/installations", func(w http.ResponseWriter, r *http.Request) {
		out := s.Installations()
		if out == nil {
			out = []Installation{}
		}
		writeJSON(w, 200, out)
	})
	m.HandleFunc("POST /_sim/license", s.ctlLicense)
	m.HandleFunc("POST /_sim/rename", s.ctlRename)
	m.HandleFunc("GET /_sim/page-url", s.ctlPageURL)
	m.HandleFunc("POST /_sim/issues", s.ctlCreateIssue)
	m.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Stats()) })
	m.HandleFunc("POST /_sim/stats/reset", func(w http.ResponseWriter, r *http.Request) { s.ResetStats(); w.WriteHeader(http.StatusNoContent) })
	m.HandleFunc("GET /_sim/knobs", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, knobsJSON(s.getKnobs())) })
	m.HandleFunc("POST /_sim/knobs", s.ctlKnobs)
	m.HandleFunc("GET /_sim/quota", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.QuotaStatus()) })
	m.HandleFunc("POST /_sim/quota", s.ctlQuota)
	s.reportControlRoutes(m)
	s.modelControlRoutes(m)
}

type ctlError struct {
	Error     string `json:"error"`
	AppStatus int    `json:"app_status,omitempty"`
}

func ctlFail(w http.ResponseWriter, err error) {
	var le *LifecycleError
	switch {
	case errors.As(err, &le):
		writeJSON(w, http.StatusBadGateway, ctlError{Error: err.Error(), AppStatus: le.Status})
	case errors.Is(err, errNotInstalled):
		writeJSON(w, http.StatusNotFound, ctlError{Error: err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, ctlError{Error: err.Error()})
	}
}

func ctlDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := readBody(r)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: "invalid JSON body: " + err.Error()})
		return false
	}
	return true
}

// UserCredentials is how the CLI and control API present a user.
type UserCredentials struct {
	Email       string   `json:"email"`
	APIToken    string   `json:"api_token"`
	AccountID   string   `json:"account_id"`
	DisplayName string   `json:"display_name"`
	Admin       bool     `json:"admin"`
	Projects    []string `json:"projects"`
	Closed      bool     `json:"closed,omitempty"`
	Groups      []string `json:"groups"`
	Global      []string `json:"global_permissions"`
}

func (s *Sim) credentials() []UserCredentials {
	var out []UserCredentials
	for _, u := range s.Users() {
		out = append(out, UserCredentials{u.Email, u.APIToken, u.AccountID, u.DisplayName, u.Admin, u.Projects, u.Closed, u.Groups, u.GlobalPermissions})
	}
	return out
}

func (s *Sim) ctlUsers(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.credentials()) }

func (s *Sim) ctlInstall(w http.ResponseWriter, r *http.Request) {
	var req struct {
		App     string `json:"app"`
		Variant string `json:"variant"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	v, err := ParseInstallVariant(req.Variant)
	if err != nil {
		ctlFail(w, err)
		return
	}
	in, err := s.Install(r.Context(), req.App, v)
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, 200, in)
}

func (s *Sim) ctlAddon(f func(ctx context.Context, addonKey string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AddonKey string `json:"addon_key"`
		}
		if !ctlDecode(w, r, &req) {
			return
		}
		if err := f(r.Context(), req.AddonKey); err != nil {
			ctlFail(w, err)
			return
		}
		in, _ := s.Installation(req.AddonKey)
		writeJSON(w, 200, in)
	}
}

func (s *Sim) ctlLicense(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AddonKey string `json:"addon_key"`
		State    string `json:"state"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	if err := s.SetLicense(req.AddonKey, req.State); err != nil {
		ctlFail(w, err)
		return
	}
	in, _ := s.Installation(req.AddonKey)
	writeJSON(w, 200, in)
}

func (s *Sim) ctlRename(w http.ResponseWriter, r *http.Request) {
	var req struct {
		BaseURL string `json:"base_url"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	if req.BaseURL == "" {
		ctlFail(w, errors.New("base_url is required"))
		return
	}
	s.RenameSite(req.BaseURL)
	writeJSON(w, 200, map[string]string{"base_url": s.BaseURL()})
}

func (s *Sim) ctlPageURL(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	acct := q.Get("account_id")
	if acct == "" {
		acct = s.data.users[0].AccountID
	}
	u, err := s.PageURL(q.Get("addon_key"), q.Get("module_key"), acct)
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, 200, map[string]string{"url": u})
}

func (s *Sim) ctlCreateIssue(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Project     string   `json:"project"`
		Summary     string   `json:"summary"`
		Description string   `json:"description"`
		IssueType   string   `json:"issue_type"`
		Labels      []string `json:"labels"`
		Reporter    string   `json:"reporter"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	ref, err := s.CreateIssue(NewIssue{Project: req.Project, Summary: req.Summary, Description: req.Description, IssueType: req.IssueType, Labels: req.Labels, Reporter: req.Reporter})
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": ref.ID, "key": ref.Key})
}

type knobsBody struct {
	Latency   string  `json:"latency"`
	Jitter    string  `json:"jitter"`
	Rate      float64 `json:"rate"`
	FaultRate float64 `json:"fault_rate"`
}

func knobsJSON(k Knobs) knobsBody {
	return knobsBody{Latency: k.Latency.String(), Jitter: k.Jitter.String(), Rate: k.Rate, FaultRate: k.FaultRate}
}

// ctlKnobs replaces all four knobs; omitted durations mean zero.
func (s *Sim) ctlKnobs(w http.ResponseWriter, r *http.Request) {
	var req knobsBody
	if !ctlDecode(w, r, &req) {
		return
	}
	var k Knobs
	var err error
	if req.Latency != "" {
		if k.Latency, err = time.ParseDuration(req.Latency); err != nil {
			ctlFail(w, err)
			return
		}
	}
	if req.Jitter != "" {
		if k.Jitter, err = time.ParseDuration(req.Jitter); err != nil {
			ctlFail(w, err)
			return
		}
	}
	if req.Rate < 0 || req.FaultRate < 0 || req.FaultRate > 1 {
		ctlFail(w, errors.New("rate must be ≥ 0 and fault_rate within [0, 1]"))
		return
	}
	k.Rate, k.FaultRate = req.Rate, req.FaultRate
	s.SetKnobs(k)
	writeJSON(w, 200, knobsJSON(k))
}

// ctlQuota configures the points pools: {"points": N, "tier": "global"|
// "tenant", "window": "1h", "beta": false} replaces the configuration (an
// omitted field keeps its value); {"spend": {"addon_key": K, "points": N}}
// charges an app's pool now, as its other tenants would.
func (s *Sim) ctlQuota(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Points *int    `json:"points"`
		Tier   *string `json:"tier"`
		Window *string `json:"window"`
		Beta   *bool   `json:"beta"`
		Spend  *struct {
			AddonKey string `json:"addon_key"`
			Points   int    `json:"points"`
		} `json:"spend"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	q := s.quotas.get()
	if req.Points != nil {
		q.Points = *req.Points
	}
	if req.Tier != nil {
		q.Tier = *req.Tier
	}
	if req.Window != nil {
		d, err := time.ParseDuration(*req.Window)
		if err != nil {
			ctlFail(w, err)
			return
		}
		q.Window = d
	}
	if req.Beta != nil {
		q.Beta = *req.Beta
	}
	if err := s.SetQuota(q); err != nil {
		ctlFail(w, err)
		return
	}
	if req.Spend != nil {
		if req.Spend.AddonKey == "" || req.Spend.Points < 0 {
			ctlFail(w, errors.New("spend needs an addon_key and points ≥ 0"))
			return
		}
		s.SpendQuota(req.Spend.AddonKey, req.Spend.Points)
	}
	writeJSON(w, 200, s.QuotaStatus())
}

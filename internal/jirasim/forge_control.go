package jirasim

import (
	"context"
	"errors"
	"net/http"
)

// forgeRoutes serves the Forge platform's side: the JWKS, the product API
// gateway, GraphQL, storage, Custom UI hosting and /_sim/forge/ control.
func (s *Sim) forgeRoutes(m *http.ServeMux) {
	s.initForge()
	m.HandleFunc("GET "+forgeJWKSPath, s.handleForgeJWKS)
	m.HandleFunc("/ex/jira/{cloudId}/{rest...}", s.handleExJira)
	m.Handle("POST "+forgeGraphQLPath, s.edge("POST /graphql", s.handleForgeGraphQL))
	for _, op := range []string{"get", "set", "delete", "query"} {
		m.Handle("POST "+forgeKVSPrefix+"/v1/"+op, s.edge("POST /forge/storage/kvs/v1/"+op, s.handleKVS(op)))
	}
	m.HandleFunc("GET /jira/forge/{appUUID}/{moduleKey}", s.handleForgePage)
	m.HandleFunc("POST /jira/forge/{appUUID}/{moduleKey}/invoke", s.handleForgeInvoke)
	m.HandleFunc("POST /jira/forge/{appUUID}/{moduleKey}/product", s.handleForgeProduct)
	m.HandleFunc("GET /forge/cdn/{appUUID}/{resource}/{file...}", s.handleForgeCDN)
	m.HandleFunc("GET /forge/bridge.js", handleForgeBridgeJS)

	m.HandleFunc("POST /_sim/forge/install", s.ctlForgeApp(s.InstallForge))
	m.HandleFunc("POST /_sim/forge/migrate", s.ctlForgeApp(s.MigrateConnectToForge))
	m.HandleFunc("POST /_sim/forge/uninstall", s.ctlForgeID(s.UninstallForge))
	m.HandleFunc("POST /_sim/forge/trigger", s.ctlForgeTrigger)
	m.HandleFunc("POST /_sim/forge/triggers/stop", s.ctlForgeID(func(_ context.Context, id string) error { return s.StopForgeTriggers(id) }))
	m.HandleFunc("POST /_sim/forge/triggers/resume", s.ctlForgeID(func(_ context.Context, id string) error { return s.ResumeForgeTriggers(id) }))
	m.HandleFunc("POST /_sim/forge/upgrade", s.ctlForgeUpgrade)
	m.HandleFunc("POST /_sim/forge/license", s.ctlForgeLicense)
	m.HandleFunc("POST /_sim/forge/jwks/rotate", func(w http.ResponseWriter, r *http.Request) {
		kid := s.RotateForgeKeys()
		writeJSON(w, 200, map[string]any{"kid": kid, "kids": s.ForgeKeyIDs()})
	})
	m.HandleFunc("POST /_sim/forge/jwks/retire", func(w http.ResponseWriter, r *http.Request) {
		s.RetireForgeKeys()
		writeJSON(w, 200, map[string]any{"kids": s.ForgeKeyIDs()})
	})
	m.HandleFunc("POST /_sim/forge/service-account", s.ctlServiceAccount)
	m.HandleFunc("GET /_sim/forge/installations", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.ForgeInstallations()) })
	m.HandleFunc("GET /_sim/forge/page-url", s.ctlForgePageURL)
	m.HandleFunc("GET /_sim/forge/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.ForgeStats()) })
	m.HandleFunc("POST /_sim/forge/stats/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetForgeStats()
		w.WriteHeader(http.StatusNoContent)
	})
}

// forgeAppRequest names a Forge app: a manifest (text or path) with its
// variables, or the app spelled out.
type forgeAppRequest struct {
	Manifest     string            `json:"manifest"`      // manifest.yml text
	ManifestPath string            `json:"manifest_path"` // or its path on the sim's machine
	Vars         map[string]string `json:"vars"`          // ${NAME} substitutions
	App          *ForgeApp         `json:"app"`
}

func (req forgeAppRequest) app() (ForgeApp, error) {
	switch {
	case req.App != nil && req.Manifest == "" && req.ManifestPath == "":
		return *req.App, nil
	case req.Manifest != "" && req.ManifestPath == "" && req.App == nil:
		return ParseForgeManifest([]byte(req.Manifest), ".", req.Vars)
	case req.ManifestPath != "" && req.Manifest == "" && req.App == nil:
		return LoadForgeManifest(req.ManifestPath, req.Vars)
	}
	return ForgeApp{}, errors.New("give exactly one of manifest, manifest_path or app")
}

func ctlForgeFail(w http.ResponseWriter, err error, in *ForgeInstallation) {
	status := http.StatusBadRequest
	var de *DeliveryError
	var le *LifecycleError
	switch {
	case errors.As(err, &de), errors.As(err, &le):
		status = http.StatusBadGateway
	case errors.Is(err, errForgeNotInstalled), errors.Is(err, errNotInstalled):
		status = http.StatusNotFound
	case errors.Is(err, ErrTriggersStopped):
		status = http.StatusConflict
	}
	body := map[string]any{"error": err.Error()}
	if in != nil && in.ID != "" {
		body["installation"] = in
	}
	writeJSON(w, status, body)
}

func (s *Sim) ctlForgeApp(f func(context.Context, ForgeApp) (ForgeInstallation, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req forgeAppRequest
		if !ctlDecode(w, r, &req) {
			return
		}
		app, err := req.app()
		if err != nil {
			ctlForgeFail(w, err, nil)
			return
		}
		in, err := f(r.Context(), app)
		if err != nil {
			ctlForgeFail(w, err, &in)
			return
		}
		writeJSON(w, 200, in)
	}
}

func (s *Sim) ctlForgeID(f func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID string `json:"installation_id"`
		}
		if !ctlDecode(w, r, &req) {
			return
		}
		if err := f(r.Context(), req.ID); err != nil {
			ctlForgeFail(w, err, nil)
			return
		}
		in, _ := s.ForgeInstallation(req.ID)
		writeJSON(w, 200, in)
	}
}

// ctlForgeTrigger fires one installation's scheduled triggers, or every
// live installation's when installation_id is empty.
func (s *Sim) ctlForgeTrigger(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"installation_id"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	ids := []string{req.ID}
	if req.ID == "" {
		ids = nil
		for _, in := range s.ForgeInstallations() {
			ids = append(ids, in.ID)
		}
	}
	fired := []string{}
	for _, id := range ids {
		if err := s.FireForgeTrigger(r.Context(), id); err != nil {
			if req.ID == "" && errors.Is(err, ErrTriggersStopped) {
				continue
			}
			ctlForgeFail(w, err, nil)
			return
		}
		fired = append(fired, id)
	}
	writeJSON(w, 200, map[string]any{"fired": fired})
}

func (s *Sim) ctlForgeUpgrade(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID      string `json:"installation_id"`
		Version string `json:"version"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	if req.Version == "" {
		ctlForgeFail(w, errors.New("version is required"), nil)
		return
	}
	if err := s.UpgradeForge(r.Context(), req.ID, req.Version); err != nil {
		ctlForgeFail(w, err, nil)
		return
	}
	in, _ := s.ForgeInstallation(req.ID)
	writeJSON(w, 200, in)
}

func (s *Sim) ctlForgeLicense(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID    string `json:"installation_id"`
		State string `json:"state"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	if err := s.SetForgeLicense(req.ID, req.State); err != nil {
		ctlForgeFail(w, err, nil)
		return
	}
	in, _ := s.ForgeInstallation(req.ID)
	writeJSON(w, 200, in)
}

func (s *Sim) ctlServiceAccount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AccountID string `json:"account_id"`
		On        bool   `json:"service_account"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	if err := s.SetServiceAccount(req.AccountID, req.On); err != nil {
		ctlForgeFail(w, err, nil)
		return
	}
	writeJSON(w, 200, map[string]any{"account_id": req.AccountID, "service_account": req.On})
}

func (s *Sim) ctlForgePageURL(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	acct := q.Get("account_id")
	if acct == "" {
		acct = s.data.users[0].AccountID
	}
	u, err := s.ForgePageURL(q.Get("installation_id"), q.Get("module_key"), acct)
	if err != nil {
		ctlForgeFail(w, err, nil)
		return
	}
	writeJSON(w, 200, map[string]string{"url": u})
}

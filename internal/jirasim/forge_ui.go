package jirasim

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"
)

// Custom UI in the simulated Jira. GET /jira/forge/{appUUID}/{moduleKey}
// ?as={accountId} is a stand-in for Jira's page around a Forge module: a
// user switcher and an iframe loading the app's resource from
// /forge/cdn/{appUUID}/{resourceKey}/, whose HTML gets /forge/bridge.js
// injected, as Atlassian's CDN injects its bridge. The stand-in defines
// window.__bridge.callBridge, the interface @forge/bridge calls, and carries
// each call to the host page over postMessage: invoke (invokeRemote, as the
// page's user, with a FIT and tokens), getContext, and fetchProduct
// (requestJira as that user); the cosmetic calls resolve to nothing.

//go:embed forge_page.html
var forgePageFS embed.FS

var forgePageTmpl = template.Must(template.ParseFS(forgePageFS, "forge_page.html"))

// ForgePageURL is the host page of a Custom UI module as accountID sees it.
func (s *Sim) ForgePageURL(installationID, moduleKey, accountID string) (string, error) {
	in, err := s.liveForge(installationID)
	if err != nil {
		return "", err
	}
	if _, err := forgePage(in, moduleKey); err != nil {
		return "", err
	}
	if _, ok := s.data.byAcct[accountID]; !ok {
		return "", fmt.Errorf("jirasim: no user %q", accountID)
	}
	return s.BaseURL() + "/jira/forge/" + strings.TrimPrefix(in.AppID, appARIPrefix) + "/" + url.PathEscape(moduleKey) + "?as=" + url.QueryEscape(accountID), nil
}

func forgePage(in *forgeInstall, key string) (ForgePage, error) {
	for _, p := range in.app.Pages {
		if p.Key == key {
			return p, nil
		}
	}
	return ForgePage{}, fmt.Errorf("jirasim: app %s has no Custom UI module %q", in.AppName, key)
}

// forgeByApp finds the live installation of an app by its UUID.
func (s *Sim) forgeByApp(appUUID string) (*forgeInstall, error) {
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.installs {
		if !in.removed && in.AppID == appARIPrefix+appUUID {
			cp := *in
			return &cp, nil
		}
	}
	return nil, errForgeNotInstalled
}

// pageUser is the ?as= user, the site admin by default.
func (s *Sim) pageUser(r *http.Request) (int, error) {
	as := r.URL.Query().Get("as")
	if as == "" {
		return 0, nil
	}
	ui, ok := s.data.byAcct[as]
	if !ok || s.data.users[ui].Closed {
		return 0, fmt.Errorf("no active user %q", as)
	}
	return ui, nil
}

func (s *Sim) handleForgePage(w http.ResponseWriter, r *http.Request) {
	in, err := s.forgeByApp(r.PathValue("appUUID"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	page, err := forgePage(in, r.PathValue("moduleKey"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	ui, err := s.pageUser(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	user := s.data.users[ui]
	appUUID := strings.TrimPrefix(in.AppID, appARIPrefix)
	self := "/jira/forge/" + appUUID + "/" + url.PathEscape(page.Key)
	q := "?as=" + url.QueryEscape(user.AccountID)
	pageCtx := map[string]any{
		"accountId": user.AccountID, "cloudId": in.CloudID, "siteUrl": s.BaseURL(), "moduleKey": page.Key,
		"localId":       "ari:cloud:ecosystem::extension/" + appUUID + "/" + in.EnvironmentID + "/static/" + page.Key,
		"extension":     map[string]any{"type": page.Type},
		"environmentId": in.EnvironmentID, "environmentType": in.EnvironmentType,
		"locale": "en-US", "timezone": user.TimeZone, "theme": nil,
	}
	if lic := s.fitLicense(in); lic != nil {
		pageCtx["license"] = map[string]any{"active": lic["active"], "isActive": lic["isActive"]}
	}
	cfg, _ := json.Marshal(map[string]any{"context": pageCtx, "invokeURL": self + "/invoke" + q, "productURL": self + "/product" + q})
	type option struct {
		AccountID, Name string
		Selected        bool
	}
	var users []option
	for _, u := range s.data.users {
		if !u.Closed {
			users = append(users, option{u.AccountID, u.DisplayName, u.AccountID == user.AccountID})
		}
	}
	title := page.Title
	if title == "" {
		title = page.Key
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	forgePageTmpl.Execute(w, map[string]any{
		"Title": title, "App": in.AppName, "Users": users, "Path": self,
		"Src":    "/forge/cdn/" + appUUID + "/" + url.PathEscape(page.Resource) + "/index.html",
		"Config": template.JS(cfg),
	})
}

type bridgeReply struct {
	Success bool           `json:"success"`
	Payload *ForgeResponse `json:"payload,omitempty"`
	Error   map[string]any `json:"error,omitempty"`
}

// handleForgeInvoke carries an invokeRemote call from the host page.
func (s *Sim) handleForgeInvoke(w http.ResponseWriter, r *http.Request) {
	in, err := s.forgeByApp(r.PathValue("appUUID"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, ctlError{Error: err.Error()})
		return
	}
	ui, err := s.pageUser(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: err.Error()})
		return
	}
	var req ForgeRequest
	if !ctlDecode(w, r, &req) {
		return
	}
	resp, err := s.InvokeForge(r.Context(), in.ID, r.PathValue("moduleKey"), s.data.users[ui].AccountID, req)
	if err != nil {
		e := map[string]any{"message": err.Error()}
		if resp.Status != 0 {
			e["status"] = resp.Status
		}
		writeJSON(w, http.StatusOK, bridgeReply{Error: e})
		return
	}
	writeJSON(w, http.StatusOK, bridgeReply{Success: true, Payload: &resp})
}

// handleForgeProduct carries requestJira: the page's user calls the REST
// API with their own rights.
func (s *Sim) handleForgeProduct(w http.ResponseWriter, r *http.Request) {
	if _, err := s.forgeByApp(r.PathValue("appUUID")); err != nil {
		writeJSON(w, http.StatusNotFound, ctlError{Error: err.Error()})
		return
	}
	ui, err := s.pageUser(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: err.Error()})
		return
	}
	var req struct {
		Product          string `json:"product"`
		RestPath         string `json:"restPath"`
		FetchRequestInit struct {
			Method  string      `json:"method"`
			Body    *string     `json:"body"`
			Headers [][2]string `json:"headers"`
		} `json:"fetchRequestInit"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	if req.Product != "jira" || !strings.HasPrefix(req.RestPath, "/rest/") {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: "requestJira takes a /rest/ path of this Jira site"})
		return
	}
	method := req.FetchRequestInit.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.FetchRequestInit.Body != nil {
		body = strings.NewReader(*req.FetchRequestInit.Body)
	}
	inner, err := http.NewRequestWithContext(r.Context(), method, s.BaseURL()+req.RestPath, body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: err.Error()})
		return
	}
	for _, h := range req.FetchRequestInit.Headers {
		if !strings.EqualFold(h[0], "Authorization") {
			inner.Header.Set(h[0], h[1])
		}
	}
	inner.Header.Set("Authorization", basicFor(s.data.users[ui]))
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, inner)
	headers := map[string]string{}
	for k := range rec.Header() {
		headers[strings.ToLower(k)] = rec.Header().Get(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"body": rec.Body.String(), "headers": headers, "status": rec.Code, "statusText": http.StatusText(rec.Code)})
}

func basicFor(u User) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Email+":"+u.APIToken))
}

var headOpen = regexp.MustCompile(`(?i)<head[^>]*>`)

const bridgeTag = `<script src="/forge/bridge.js"></script>`

// injectBridge puts the bridge stand-in first in the document's head.
func injectBridge(html []byte) []byte {
	if loc := headOpen.FindIndex(html); loc != nil {
		return append(append(append([]byte{}, html[:loc[1]]...), bridgeTag...), html[loc[1]:]...)
	}
	return append([]byte(bridgeTag), html...)
}

// handleForgeCDN serves an app's Custom UI resource from its directory or URL.
func (s *Sim) handleForgeCDN(w http.ResponseWriter, r *http.Request) {
	in, err := s.forgeByApp(r.PathValue("appUUID"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	src, ok := in.app.Resources[r.PathValue("resource")]
	if !ok {
		http.Error(w, "no such resource", http.StatusNotFound)
		return
	}
	file := r.PathValue("file")
	if file == "" || strings.HasSuffix(file, "/") {
		file += "index.html"
	}
	var body []byte
	var ctype string
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(src, "/")+"/"+file, nil)
		resp, err := http.DefaultClient.Do(req) // dev servers redirect index.html to /
		if err != nil {
			http.Error(w, "resource unreachable: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("resource answered HTTP %d", resp.StatusCode), http.StatusNotFound)
			return
		}
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		ctype = resp.Header.Get("Content-Type")
	} else {
		if !fs.ValidPath(file) {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		body, err = fs.ReadFile(os.DirFS(src), file)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		ctype = mime.TypeByExtension(path.Ext(file))
	}
	if ctype == "" {
		ctype = http.DetectContentType(body)
	}
	if mt, _, _ := mime.ParseMediaType(ctype); mt == "text/html" {
		body = injectBridge(body)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// forgeBridgeJS stands in for the bridge Atlassian injects into Custom UI.
const forgeBridgeJS = `(function () {
  "use strict";
  if (window.__bridge) return;
  var seq = 0, pending = {};
  window.addEventListener("message", function (e) {
    if (e.source !== window.parent) return;
    var m = e.data;
    if (!m || m.jirasimBridgeReply !== 1 || !pending[m.id]) return;
    var p = pending[m.id];
    delete pending[m.id];
    if (m.error !== undefined) p.reject(new Error(m.error)); else p.resolve(m.result);
  });
  window.__bridge = {
    callBridge: function (name, payload) {
      return new Promise(function (resolve, reject) {
        var id = ++seq;
        pending[id] = { resolve: resolve, reject: reject };
        window.parent.postMessage({ jirasimBridge: 1, id: id, name: name, payload: payload }, "*");
      });
    }
  };
})();
`

func handleForgeBridgeJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(forgeBridgeJS))
}

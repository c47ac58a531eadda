package jirasim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// The simulator is also the Jira that installs Connect apps: it reads the
// app descriptor and sends signed lifecycle callbacks, as Atlassian does.

type descriptor struct {
	Key            string `json:"key"`
	Name           string `json:"name"`
	BaseURL        string `json:"baseUrl"`
	Authentication struct {
		Type string `json:"type"`
	} `json:"authentication"`
	Lifecycle struct {
		Installed   string `json:"installed"`
		Uninstalled string `json:"uninstalled"`
		Enabled     string `json:"enabled"`
		Disabled    string `json:"disabled"`
	} `json:"lifecycle"`
	Scopes  []string `json:"scopes"`
	Modules struct {
		GeneralPages []pageModule `json:"generalPages"`
		AdminPages   []pageModule `json:"adminPages"`
	} `json:"modules"`
}

type pageModule struct {
	Key  string `json:"key"`
	Name struct {
		Value string `json:"value"`
	} `json:"name"`
	URL string `json:"url"`
}

// Module is an app page the sim can show.
type Module struct {
	Kind string `json:"kind"` // "generalPages" or "adminPages"
	Key  string `json:"key"`
	Name string `json:"name"`
	URL  string `json:"url"` // as in the descriptor, relative to the app's base URL
}

// Installation is an app installed in the simulated site.
type Installation struct {
	AddonKey          string   `json:"addon_key"`
	ClientKey         string   `json:"client_key"`    // stable for this site
	SharedSecret      string   `json:"shared_secret"` // new on every install
	OAuthClientID     string   `json:"oauth_client_id"`
	InstallationID    string   `json:"installation_id"` // Connect on Forge only: the Forge installation
	BaseURL           string   `json:"base_url"`        // the site URL sent to the app
	DisplayURL        string   `json:"display_url"`
	AppBaseURL        string   `json:"app_base_url"` // the descriptor's baseUrl
	SEN               string   `json:"sen"`
	EntitlementID     string   `json:"entitlement_id"`
	EntitlementNumber string   `json:"entitlement_number"`
	License           string   `json:"license"` // "active", "expired" or "none"
	Enabled           bool     `json:"enabled"`
	Scopes            []string `json:"scopes"`
	Modules           []Module `json:"modules"`
	Status            int      `json:"status"` // the app's HTTP status for the last lifecycle call
}

type installation struct {
	Installation
	desc descriptor
}

// LifecycleError is an app's non-2xx answer to a lifecycle callback.
type LifecycleError struct {
	Event  string
	Status int
	Body   string
}

func (e *LifecycleError) Error() string {
	return fmt.Sprintf("jirasim: app answered %s with HTTP %d: %s", e.Event, e.Status, e.Body)
}

// InstallVariant selects a deliberately broken installed callback, for
// testing an app's verification. The zero value is a correct install.
type InstallVariant int

const (
	InstallValid             InstallVariant = iota
	InstallBadSignature                     // RS256 signature bytes altered
	InstallWrongAudience                    // aud is not the app's baseUrl
	InstallUnknownKeyID                     // kid not served by /connect-install-keys
	InstallMissingKeyID                     // no kid header
	InstallContextQSH                       // qsh "context-qsh" instead of the request's
	InstallWrongQSH                         // qsh of another request
	InstallClientKeyMismatch                // body clientKey ≠ iss
	InstallAlgNone                          // alg "none", no signature
	InstallAlgConfusion                     // HS256 keyed with the RSA public key PEM
	InstallExpired                          // exp in the past
	InstallUnsigned                         // no Authorization header
)

var variantNames = []string{"valid", "bad-signature", "wrong-aud", "unknown-kid", "missing-kid", "context-qsh", "wrong-qsh", "clientkey-mismatch", "alg-none", "alg-confusion", "expired", "unsigned"}

func (v InstallVariant) String() string {
	if int(v) < len(variantNames) {
		return variantNames[v]
	}
	return fmt.Sprintf("InstallVariant(%d)", int(v))
}

// InstallVariants lists every variant, valid first.
func InstallVariants() []InstallVariant {
	out := make([]InstallVariant, len(variantNames))
	for i := range out {
		out[i] = InstallVariant(i)
	}
	return out
}

// ParseInstallVariant reads a variant name as printed by String.
func ParseInstallVariant(s string) (InstallVariant, error) {
	if s == "" {
		return InstallValid, nil
	}
	for i, n := range variantNames {
		if n == s {
			return InstallVariant(i), nil
		}
	}
	return 0, fmt.Errorf("jirasim: unknown install variant %q (one of %s)", s, strings.Join(variantNames, ", "))
}

// installKeys is the RSA key pair signing install/uninstall callbacks. One
// per process: generating RSA keys is slow and tests make many sims.
type installKeys struct {
	priv *rsa.PrivateKey
	kid  string
	pem  []byte
}

var (
	keysOnce sync.Once
	keys     *installKeys
)

func sharedInstallKeys() *installKeys {
	keysOnce.Do(func() {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(der)
		keys = &installKeys{priv: priv, kid: "jirasim-" + hex.EncodeToString(sum[:8]),
			pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
	})
	return keys
}

// InstallKeyID is the kid of valid signed-install tokens; its PEM public key
// is served at {baseURL}/connect-install-keys/{kid}.
func (s *Sim) InstallKeyID() string { return s.keys.kid }

func (s *Sim) handleInstallKey(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("kid") != s.keys.kid {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.keys.pem)
}

func (s *Sim) fetchDescriptor(ctx context.Context, appURL string) (descriptor, error) {
	var d descriptor
	u := strings.TrimSuffix(appURL, "/")
	if !strings.HasSuffix(u, ".json") {
		u += "/atlassian-connect.json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return d, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return d, fmt.Errorf("jirasim: fetching descriptor: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("jirasim: descriptor %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&d); err != nil {
		return d, fmt.Errorf("jirasim: descriptor: %w", err)
	}
	switch {
	case d.Key == "":
		return d, errors.New("jirasim: descriptor has no key")
	case !strings.EqualFold(d.Authentication.Type, "jwt"):
		return d, errors.New(`jirasim: descriptor authentication.type must be "jwt"`)
	}
	bu, err := url.Parse(d.BaseURL)
	if err != nil || bu.Host == "" {
		return d, fmt.Errorf("jirasim: descriptor baseUrl %q is not an absolute URL", d.BaseURL)
	}
	if bu.Scheme != "https" && !(s.opts.AllowHTTPApp && bu.Scheme == "http" && isLoopback(bu.Hostname())) {
		return d, fmt.Errorf("jirasim: descriptor baseUrl %q must be https (http only on loopback with AllowHTTPApp)", d.BaseURL)
	}
	d.BaseURL = strings.TrimSuffix(d.BaseURL, "/")
	return d, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// uuidFrom derives a stable UUID-shaped id from the site seed and a label.
func (s *Sim) uuidFrom(label string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%s", s.opts.Seed, label)))
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// Install installs the app whose descriptor is at appBaseURL (or
// appBaseURL/atlassian-connect.json): it sends the signed installed callback
// (broken as v asks) and, if the app accepts, the enabled callback. The
// returned Installation is what was sent, with the app's status; a non-2xx
// answer is a *LifecycleError and leaves the site unchanged.
func (s *Sim) Install(ctx context.Context, appBaseURL string, v InstallVariant) (Installation, error) {
	d, err := s.fetchDescriptor(ctx, appBaseURL)
	if err != nil {
		return Installation{}, err
	}
	var secret [32]byte
	rand.Read(secret[:])
	base := s.BaseURL()
	in := &installation{desc: d, Installation: Installation{
		AddonKey:          d.Key,
		ClientKey:         s.uuidFrom("clientKey"),
		SharedSecret:      hex.EncodeToString(secret[:]),
		OAuthClientID:     s.uuidFrom("oauth/" + d.Key),
		BaseURL:           base,
		DisplayURL:        base,
		AppBaseURL:        d.BaseURL,
		SEN:               "SEN-" + fmt.Sprint(10000000+s.opts.Seed%9000000),
		EntitlementID:     s.uuidFrom("entitlement/" + d.Key),
		EntitlementNumber: "E-" + strings.ToUpper(s.uuidFrom("en/" + d.Key)[:4]) + "-" + strings.ToUpper(s.uuidFrom("en/" + d.Key)[9:13]),
		License:           "active",
		Enabled:           true,
		Scopes:            d.Scopes,
	}}
	for _, m := range d.Modules.GeneralPages {
		in.Modules = append(in.Modules, Module{Kind: "generalPages", Key: m.Key, Name: m.Name.Value, URL: m.URL})
	}
	for _, m := range d.Modules.AdminPages {
		in.Modules = append(in.Modules, Module{Kind: "adminPages", Key: m.Key, Name: m.Name.Value, URL: m.URL})
	}
	s.mu.RLock()
	if old := s.installs[d.Key]; old != nil {
		in.License = old.License // a reinstall keeps the marketplace license
		in.InstallationID = old.InstallationID
	}
	s.mu.RUnlock()
	if d.Lifecycle.Installed != "" {
		status, err := s.sendLifecycle(ctx, in, "installed", v)
		in.Status = status
		if err != nil {
			return in.Installation, err
		}
	}
	s.mu.Lock()
	s.installs[d.Key] = in
	s.mu.Unlock()
	if d.Lifecycle.Enabled != "" {
		status, err := s.sendLifecycle(ctx, in, "enabled", InstallValid)
		s.setStatus(d.Key, status)
		if err != nil {
			out, _ := s.Installation(d.Key)
			return out, err
		}
	}
	out, _ := s.Installation(d.Key)
	return out, nil
}

func (s *Sim) setStatus(addonKey string, status int) {
	s.mu.Lock()
	if in := s.installs[addonKey]; in != nil {
		in.Status = status
	}
	s.mu.Unlock()
}

// Installation returns an installed app's record.
func (s *Sim) Installation(addonKey string) (Installation, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.installs[addonKey]
	if in == nil {
		return Installation{}, false
	}
	out := in.Installation
	out.Modules = append([]Module(nil), in.Modules...)
	return out, true
}

// Installations lists installed apps.
func (s *Sim) Installations() []Installation {
	s.mu.RLock()
	keys := make([]string, 0, len(s.installs))
	for k := range s.installs {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	var out []Installation
	for _, k := range keys {
		if in, ok := s.Installation(k); ok {
			out = append(out, in)
		}
	}
	return out
}

var errNotInstalled = errors.New("jirasim: app is not installed")

// Enable marks the app enabled and sends the HS256-signed enabled callback.
func (s *Sim) Enable(ctx context.Context, addonKey string) error {
	return s.toggle(ctx, addonKey, true)
}

// Disable marks the app disabled (its JWT calls are refused) and sends the
// disabled callback.
func (s *Sim) Disable(ctx context.Context, addonKey string) error {
	return s.toggle(ctx, addonKey, false)
}

func (s *Sim) toggle(ctx context.Context, addonKey string, on bool) error {
	s.mu.Lock()
	in := s.installs[addonKey]
	if in != nil {
		in.Enabled = on
	}
	s.mu.Unlock()
	if in == nil {
		return errNotInstalled
	}
	event := map[bool]string{true: "enabled", false: "disabled"}[on]
	status, err := s.sendLifecycle(ctx, in, event, InstallValid)
	s.setStatus(addonKey, status)
	return err
}

// Uninstall removes the app with its properties and tokens, then sends the
// RS256-signed uninstalled callback. The site forgets the app even when the
// callback fails, as Jira does.
func (s *Sim) Uninstall(ctx context.Context, addonKey string) error {
	s.mu.Lock()
	in := s.installs[addonKey]
	delete(s.installs, addonKey)
	delete(s.props, addonKey)
	for t, bt := range s.tokens {
		if bt.addonKey == addonKey {
			delete(s.tokens, t)
		}
	}
	s.mu.Unlock()
	if in == nil {
		return errNotInstalled
	}
	preErr := s.removeForge(ctx, in.InstallationID) // Connect on Forge: one app, one uninstall
	_, err := s.sendLifecycle(ctx, in, "uninstalled", InstallValid)
	return errors.Join(preErr, err)
}

// SetLicense switches an installed app's license: "active", "expired" or
// "none".
func (s *Sim) SetLicense(addonKey, state string) error {
	switch state {
	case "active", "expired", "none":
	default:
		return fmt.Errorf("jirasim: license state %q is not active, expired or none", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installs[addonKey]
	if in == nil {
		return errNotInstalled
	}
	in.License = state
	return nil
}

func (s *Sim) lifecyclePath(d descriptor, event string) string {
	switch event {
	case "installed":
		return d.Lifecycle.Installed
	case "uninstalled":
		return d.Lifecycle.Uninstalled
	case "enabled":
		return d.Lifecycle.Enabled
	}
	return d.Lifecycle.Disabled
}

// sendLifecycle POSTs one lifecycle event. installed and uninstalled are
// RS256 signed-install tokens; enabled and disabled are HS256 with the
// shared secret.
func (s *Sim) sendLifecycle(ctx context.Context, in *installation, event string, v InstallVariant) (int, error) {
	path := s.lifecyclePath(in.desc, event)
	if path == "" {
		return 0, nil
	}
	target := in.desc.BaseURL + path
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		target = path
	}
	admin := s.data.users[0]
	payload := map[string]any{
		"key": in.AddonKey, "clientKey": in.ClientKey, "sharedSecret": in.SharedSecret,
		"baseUrl": in.BaseURL, "displayUrl": in.DisplayURL, "productType": "jira",
		"description": "Atlassian JIRA at " + in.BaseURL, "eventType": event,
		"oauthClientId":  in.OAuthClientID,
		"cloudId":        s.uuidFrom("cloudId"),
		"pluginsVersion": "1001.0.0-SNAPSHOT", "serverVersion": "100274",
	}
	if in.InstallationID != "" { // Connect on Forge: the site's Forge installation
		payload["installationId"] = in.InstallationID
	}
	if in.License != "none" {
		payload["serviceEntitlementNumber"] = strings.TrimPrefix(in.SEN, "SEN-")
		payload["entitlementId"] = in.EntitlementID
		payload["entitlementNumber"] = in.EntitlementNumber
	}
	if v == InstallClientKeyMismatch {
		payload["clientKey"] = s.uuidFrom("someone-else")
	}
	body, _ := json.Marshal(payload)
	qsh, err := qshOfURL(http.MethodPost, target, in.desc.BaseURL)
	if err != nil {
		return 0, err
	}
	now := s.now().Unix()
	claims := map[string]any{"iss": in.ClientKey, "sub": admin.AccountID, "iat": now, "exp": now + 180, "qsh": qsh}
	var tok string
	if event == "installed" || event == "uninstalled" {
		tok, err = s.signInstallToken(claims, in.desc.BaseURL, target, v)
	} else {
		tok, err = signJWT(jwtHeader{Alg: "HS256", Typ: "JWT"}, claims, hs256([]byte(in.SharedSecret)))
	}
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Atlassian HttpClient (jirasim)")
	if v != InstallUnsigned {
		req.Header.Set("Authorization", "JWT "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("jirasim: %s callback: %w", event, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, &LifecycleError{Event: event, Status: resp.StatusCode, Body: strings.TrimSpace(string(rb))}
	}
	return resp.StatusCode, nil
}

// signInstallToken signs an RS256 install token, broken as v asks.
func (s *Sim) signInstallToken(claims map[string]any, appBase, target string, v InstallVariant) (string, error) {
	h := jwtHeader{Alg: "RS256", Typ: "JWT", Kid: s.keys.kid}
	claims["aud"] = []string{appBase}
	claims["context"] = map[string]any{}
	now := s.now().Unix()
	switch v {
	case InstallWrongAudience:
		claims["aud"] = []string{"https://attacker.example.com"}
	case InstallUnknownKeyID:
		h.Kid = "jirasim-unknown-0000"
	case InstallMissingKeyID:
		h.Kid = ""
	case InstallContextQSH:
		claims["qsh"] = "context-qsh"
	case InstallWrongQSH:
		claims["qsh"], _ = qshOfURL(http.MethodPost, target+"-other", appBase)
	case InstallExpired:
		claims["iat"], claims["exp"] = now-600, now-300
	case InstallAlgNone:
		return signJWT(jwtHeader{Alg: "none", Typ: "JWT", Kid: h.Kid}, claims, nil)
	case InstallAlgConfusion:
		return signJWT(jwtHeader{Alg: "HS256", Typ: "JWT", Kid: h.Kid}, claims, hs256(s.keys.pem))
	}
	tok, err := signJWT(h, claims, rs256(s.keys.priv))
	if err != nil || v != InstallBadSignature {
		return tok, err
	}
	sig, _ := b64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	sig[len(sig)/2] ^= 0xff
	return tok[:strings.LastIndexByte(tok, '.')+1] + b64.EncodeToString(sig), nil
}

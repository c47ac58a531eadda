package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ferry/internal/jirasim"
)

const addonKey = "ferry-bi-connector"

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ferryBinary builds cmd/ferry once per test run (with the race detector when
// the tests have it, so the build reuses what the test run compiled).
func ferryBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ferry-harness-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "ferry")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "ferry/cmd/ferry")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// ferryProc is one running `ferry serve`.
type ferryProc struct {
	cmd        *exec.Cmd
	URL        string // the public listener
	ConsoleURL string
	MetricsURL string
	logs       *syncBuffer
	done       chan struct{}
	waitErr    error
}

// freeAddr picks a loopback port for Ferry: the app's base URL (which
// Connect installs are bound to) must be known before it starts, and stay
// the same across restarts.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// envList turns vars into a process environment holding nothing else, so
// no FERRY_* of the machine running the tests leaks in.
func envList(vars map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// runFerry runs a ferry command to completion: stdout, stderr, exit status.
func runFerry(t testing.TB, vars map[string]string, args ...string) (string, string, int) {
	t.Helper()
	// Commands here end by themselves; one that serves instead is a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBinary(t), args...)
	cmd.Env = envList(vars)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ferry %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// startFerry starts `ferry serve` with vars and waits until it listens.
func startFerry(t testing.TB, vars map[string]string) *ferryProc {
	t.Helper()
	cmd := exec.Command(ferryBinary(t), "serve")
	cmd.Env = envList(vars)
	pr, pw := io.Pipe()
	p := &ferryProc{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = io.MultiWriter(pw, p.logs)
	cmd.Stdout = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	timer := time.AfterFunc(2*time.Minute, func() { p.cmd.Process.Signal(syscall.SIGKILL) })
	defer timer.Stop()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var rec struct{ Msg, URL, Metrics string }
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "ferry listening":
			p.URL, p.MetricsURL = rec.URL, rec.Metrics
		case "staff console listening":
			p.ConsoleURL = strings.TrimSuffix(rec.URL, "/console/")
		}
		if p.URL != "" && p.ConsoleURL != "" {
			go io.Copy(io.Discard, pr)
			return p
		}
	}
	<-p.done
	t.Fatalf("ferry serve exited before listening (%v):\n%s", p.waitErr, p.logs)
	return nil
}

// kill ends the process with SIGKILL (a crash) and waits for it.
func (p *ferryProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends sig (SIGTERM or SIGINT) and waits for an orderly exit.
func (p *ferryProc) stop(t testing.TB, sig os.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("ferry did not stop on %v:\n%s", sig, p.logs)
	}
	if p.waitErr != nil {
		t.Fatalf("ferry exited with %v on %v:\n%s", p.waitErr, sig, p.logs)
	}
}

// sites are simulated Jira Cloud sites, one per tenant, behind one
// stand-in for Atlassian's shared services: the install-key service (every
// site's signing key by kid) and the OAuth server (each assertion goes to
// the site whose app it names), as Ferry has one URL for each.
type sites struct {
	sims     []*jirasim.Sim
	front    *httptest.Server
	keyDelay atomic.Int64 // nanoseconds the install-key service takes to answer
}

func newSites(t testing.TB, n, issues, users int) *sites {
	t.Helper()
	return newSitesWith(t, n, jirasim.Options{Issues: issues, Users: users})
}

// newSitesWith starts n sites from o (seed, projects and loopback apps set
// here); keyDelay slows the install-key service.
func newSitesWith(t testing.TB, n int, o jirasim.Options) *sites {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &sites{}
	for i := range n {
		so := o
		so.Projects, so.Seed, so.AllowHTTPApp = 2, int64(100+i), true
		sim := jirasim.New(so)
		if _, err := sim.Start(ctx, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		s.sims = append(s.sims, sim)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connect-install-keys/{kid}", func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.keyDelay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		for _, sim := range s.sims {
			if sim.InstallKeyID() == r.PathValue("kid") {
				proxy(w, r, sim.BaseURL(), nil)
				return
			}
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		iss := jwtClaim(form.Get("assertion"), "iss")
		for _, sim := range s.sims {
			if in, ok := sim.Installation(addonKey); ok && iss == "urn:atlassian:connect:clientid:"+in.OAuthClientID {
				proxy(w, r, sim.BaseURL(), body)
				return
			}
		}
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
	})
	s.front = httptest.NewServer(mux)
	t.Cleanup(s.front.Close)
	return s
}

// proxy forwards r to base (with body, if read already) and copies the answer.
func proxy(w http.ResponseWriter, r *http.Request, base string, body []byte) {
	var rd io.Reader = r.Body
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), rd)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// jwtClaim reads one string claim of a JWT without verifying it.
func jwtClaim(tok, name string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	s, _ := m[name].(string)
	return s
}

// ferryEnv is the configuration of a Ferry serving these sites from dir
// (SQLite) or dbURL (PostgreSQL) on addr.
func (s *sites) ferryEnv(addr, dir, dbURL string) map[string]string {
	env := map[string]string{
		"FERRY_ADDR": addr, "FERRY_BASE_URL": "http://" + addr, "FERRY_DATA_DIR": dir,
		"FERRY_METRICS_ADDR": "127.0.0.1:0", "FERRY_CONSOLE_ADDR": "127.0.0.1:0",
		"FERRY_EGRESS_ALLOW_LOOPBACK": "true", "FERRY_CONNECT_ALLOWED_HOSTS": "127.0.0.1:*",
		"FERRY_CONNECT_INSTALL_KEYS_URL": s.front.URL + "/connect-install-keys", "FERRY_CONNECT_OAUTH_URL": s.front.URL,
		"FERRY_CONNECT_JS_URL": s.front.URL + "/all.js", "FERRY_LOG_FORMAT": "json", "FERRY_LOG_LEVEL": "info", // the listening lines are info
		// Outside the data directory, so that its listing is the database's
		// and the key file's alone.
		"FERRY_AUDIT_CHECKPOINT_DIR": dir + "-checkpoints",
	}
	if dbURL != "" {
		env["FERRY_DATABASE_URL"] = dbURL
	}
	return env
}

// install installs the app into site i through the real signed lifecycle.
func (s *sites) install(t testing.TB, i int, appURL string) jirasim.Installation {
	t.Helper()
	in, err := s.sims[i].Install(context.Background(), appURL, jirasim.InstallValid)
	if err != nil {
		t.Fatalf("install site %d: %v", i, err)
	}
	return in
}

var tokenMeta = regexp.MustCompile(`<meta name="ferry-token" content="([^"]+)">`)

// pageToken opens the app's data-sources page as accountID through site i's
// signed iframe URL and returns the token the page uses for the app API.
func (s *sites) pageToken(t testing.TB, i int, accountID string) string {
	t.Helper()
	u, err := s.sims[i].PageURL(addonKey, "data-sources", accountID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := tokenMeta.FindSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("app page of site %d as %s: %d %.300s", i, accountID, resp.StatusCode, body)
	}
	return string(m[1])
}

// call makes an HTTP request and returns status, headers and body.
func call(t testing.TB, method, u string, body io.Reader, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// callFrom is call from the loopback address ip (any of 127.0.0.0/8): Ferry
// limits failed token attempts per client address, and a check of many
// revoked tokens is many failed attempts.
func callFrom(t testing.TB, ip, method, u string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", method, u, ip, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// loopback returns a distinct loopback address for each n.
func loopback(n int) string { return fmt.Sprintf("127.1.%d.%d", n/250%250, n%250+1) }

// api calls the app API with a page token and decodes the JSON answer.
func api(t testing.TB, appURL, method, path, token string, in any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	code, _, body := call(t, method, appURL+path, rd, "Authorization", "JWT "+token, "Content-Type", "application/json")
	return code, body
}

// createSource creates a data source on the site as its admin.
func createSource(t testing.TB, appURL, token, name string) string {
	t.Helper()
	code, body := api(t, appURL, "POST", "/app-api/sources", token, map[string]any{
		"name": name, "jql": `created >= "2000-01-01" ORDER BY created DESC`, "fields": []string{"summary", "status", "labels", "created"},
		"tables": []string{"Issues"}, "visibility": "everyone"})
	var out struct{ ID string }
	if json.Unmarshal(body, &out); code != 201 || out.ID == "" {
		t.Fatalf("create source %q: %d %s", name, code, body)
	}
	return out.ID
}

// createToken creates an access token as the page token's user.
func createToken(t testing.TB, appURL, token, label string) (id, plain string) {
	t.Helper()
	code, body := api(t, appURL, "POST", "/app-api/tokens", token, map[string]any{"label": label, "days": 30})
	var out struct{ ID, Token string }
	if json.Unmarshal(body, &out); code != 201 || out.Token == "" {
		t.Fatalf("create token: %d %s", code, body)
	}
	return out.ID, out.Token
}

// The try* helpers are for load workers: failures (a killed server) are
// expected and reported, never fatal.

func tryDo(ctx context.Context, method, u, auth, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func tryGet(ctx context.Context, u, token string) (int, error) {
	code, _, err := tryDo(ctx, "GET", u, "Bearer "+token, "")
	return code, err
}

func tryJSON(ctx context.Context, method, u, auth, body string, out any) (int, error) {
	code, b, err := tryDo(ctx, method, u, auth, body)
	if err == nil && out != nil {
		json.Unmarshal(b, out)
	}
	return code, err
}

func tryPageToken(ctx context.Context, s *sites, i int, accountID string) (string, bool) {
	u, err := s.sims[i].PageURL(addonKey, "data-sources", accountID)
	if err != nil {
		return "", false
	}
	code, body, err := tryDo(ctx, "GET", u, "", "")
	m := tokenMeta.FindSubmatch(body)
	if err != nil || code != 200 || m == nil {
		return "", false
	}
	return string(m[1]), true
}

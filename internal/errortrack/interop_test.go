package errortrack_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/getsentry/sentry-go"

	"ferry/internal/cli"
)

// The real clients: Sentry's own SDKs talk to `ferry serve` as they would
// to Sentry; a fake upstream records what Ferry forwards. What reaches the
// upstream and every byte Ferry wrote to its data directory must hold none
// of the planted values, while browser and OS names survive.

// ferry is a running `ferry serve`.
type ferry struct {
	url  string
	dir  string
	stop func()
	logs *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startFerry(t *testing.T, dir string, env map[string]string) *ferry {
	t.Helper()
	full := map[string]string{"FERRY_ADDR": "127.0.0.1:0", "FERRY_DATA_DIR": dir, "FERRY_LOG_FORMAT": "json", "FERRY_LOG_LEVEL": "debug",
		"FERRY_ERRORS_PUBLIC_KEY": key, "FERRY_EGRESS_ALLOW_LOOPBACK": "true"}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, []string{"ferry", "serve"}, func(k string) string { return full[k] }, nil, io.Discard, io.MultiWriter(pw, logs))
		pw.Close()
	}()
	f := &ferry{dir: dir, logs: logs}
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ferry serve returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("ferry serve did not stop")
			}
		})
	}
	t.Cleanup(f.stop)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var rec struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ferry listening" {
			go io.Copy(io.Discard, pr)
			f.url = rec.URL
			return f
		}
	}
	t.Fatalf("ferry serve exited before listening: %s", logs)
	return nil
}

func (f *ferry) dsn() string {
	return "http://" + key + "@" + strings.TrimPrefix(f.url, "http://") + "/errors/1"
}

// waitFor waits until the upstream has n items of type typ, or fails.
func (u *upstream) waitFor(t *testing.T, typ string, n int, within time.Duration) []received {
	t.Helper()
	deadline := time.After(within)
	for {
		var got []received
		for _, r := range u.received() {
			if r.Type == typ {
				got = append(got, r)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-u.arrived:
		case <-deadline:
			t.Fatalf("upstream got %d %s items within %v, want %d", len(got), typ, within, n)
		}
	}
}

// assertNothingPlanted searches the upstream's payloads and every file
// under Ferry's data directory (database, WAL) for the planted values.
func assertNothingPlanted(t *testing.T, u *upstream, dir string, extra ...string) {
	t.Helper()
	values := append(append([]string(nil), planted...), extra...)
	for _, r := range u.received() {
		for _, p := range values {
			if bytes.Contains(r.Payload, []byte(p)) {
				t.Errorf("upstream received %q in %s: %s", p, r.Type, r.Payload)
			}
		}
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		for _, p := range values {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s holds %q", path, p)
			}
		}
		return nil
	})
}

func contextsOf(t *testing.T, payload []byte) map[string]map[string]any {
	var ev struct {
		Contexts map[string]map[string]any `json:"contexts"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("upstream payload: %v", err)
	}
	return ev.Contexts
}

func TestRealSentryGoClientIsAcceptedScrubbedAndForwarded(t *testing.T) {
	u := newUpstream(t)
	f := startFerry(t, t.TempDir(), map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": u.dsn()})
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: f.dsn(), Release: "ferry-test@1.0.0", Transport: sentry.NewHTTPSyncTransport()})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	hub.Scope().SetUser(sentry.User{Email: "ada.lovelace@example.org", IPAddress: "203.0.113.77"})
	hub.Scope().SetTag("password", "hunter2hunter2")
	hub.CaptureException(fmt.Errorf("cannot charge %s for ada.lovelace@example.org with %s", planted[2], planted[1]))
	hub.CaptureMessage("session " + planted[7] + " from 203.0.113.77 for " + planted[6])
	if !hub.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not flush")
	}
	got := u.waitFor(t, "event", 2, 30*time.Second)
	assertNothingPlanted(t, u, f.dir)
	for _, g := range got {
		c := contextsOf(t, g.Payload)
		if c["os"]["name"] == nil || c["runtime"]["name"] != "go" {
			t.Errorf("OS or runtime lost: %s", g.Payload)
		}
		if !bytes.Contains(g.Payload, []byte(`"release":"ferry-test@1.0.0"`)) || !bytes.Contains(g.Payload, []byte(`"name":"sentry.go"`)) {
			t.Errorf("release or SDK lost: %s", g.Payload)
		}
	}
}

// debianPython is Debian's python3, which has python3-sentry-sdk (apt).
func debianPython(t *testing.T) string {
	const py = "/usr/bin/python3"
	missing := ""
	if _, err := os.Stat(py); err != nil {
		missing = py + " not found (apt-get install python3)"
	} else if out, err := exec.Command(py, "-c", "import sentry_sdk; print(sentry_sdk.VERSION)").CombinedOutput(); err != nil {
		missing = "python3-sentry-sdk is not installed (apt-get install python3-sentry-sdk): " + strings.TrimSpace(string(out))
	}
	if missing != "" {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal(missing)
		}
		t.Skip("interop test skipped: " + missing)
	}
	return py
}

func TestRealPythonSDKUsesStoreWithGzip(t *testing.T) {
	py := debianPython(t)
	u := newUpstream(t)
	f := startFerry(t, t.TempDir(), map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": u.dsn()})
	// A recording proxy in front of Ferry shows how the SDK talks.
	target, _ := url.Parse(f.url)
	var mu sync.Mutex
	var seen []string
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %s %d", r.Method, r.URL.Path, r.Header.Get("Content-Encoding"), rec.Code))
		mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer proxy.Close()
	dsn := "http://" + key + "@" + strings.TrimPrefix(proxy.URL, "http://") + "/errors/1"
	script := `
import sys, sentry_sdk
sentry_sdk.init(dsn=sys.argv[1], release="ferry-py@1.0.0", send_default_pii=False)
sentry_sdk.set_user({"email": "ada.lovelace@example.org", "ip_address": "203.0.113.77"})
try:
    password = "hunter2hunter2"
    raise ValueError("no IBAN DE89 3704 0044 0532 0130 00 for ada.lovelace@example.org")
except ValueError:
    sentry_sdk.capture_exception()
sentry_sdk.capture_message("card 4111 1111 1111 1111 token " + sys.argv[2])
sentry_sdk.flush(10)
`
	out, err := exec.Command(py, "-c", script, dsn, planted[1]).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	got := u.waitFor(t, "event", 2, 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	stores := 0
	for _, s := range seen {
		if s == "POST /errors/api/1/store/ gzip 200" {
			stores++
		}
	}
	if stores != 2 {
		t.Errorf("python requests %q: want 2 gzip posts to /store/ answered 200", seen)
	}
	assertNothingPlanted(t, u, f.dir)
	for _, g := range got {
		if c := contextsOf(t, g.Payload); c["runtime"]["name"] != "CPython" {
			t.Errorf("runtime lost: %s", g.Payload)
		}
	}
}

func chromium(t *testing.T) string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
		t.Fatal("chromium not found and FERRY_REQUIRE_INTEROP=1: apt-get install -y chromium")
	}
	t.Skip("chromium not found (apt-get install -y chromium); skipping the browser SDK test")
	return ""
}

// testPageJS is what the app's code might do wrong: put an email, a JWT and
// a card number into errors and set the user's email.
const testPageJS = `
window.results = [];
Sentry.setUser({ email: 'ada.lovelace@example.org' });
Sentry.captureException(new Error('no access for ada.lovelace@example.org with token ` + "%s" + `'));
Sentry.captureMessage('payment with card 4111 1111 1111 1111 failed');
setTimeout(function () { throw new TypeError('uncaught: ada.lovelace@example.org at 203.0.113.77'); }, 10);
setTimeout(function () { Sentry.flush(5000).then(function (ok) { window.flushed = ok; }); }, 200);
`

func TestRealBrowserSDKInChromiumIsAcceptedScrubbedAndForwarded(t *testing.T) {
	bin := chromium(t)
	u := newUpstream(t)
	// The test page plays the app's page: its origin is FERRY_BASE_URL, the
	// origin Ferry allows to post errors (CORS), and it loads the SDK bundle
	// and loader from Ferry's static files with Ferry's DSN.
	var ferryURL, pageDSN string
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/test.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprintf(w, testPageJS, planted[1])
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><html><head>
<script src="%[1]s/static/sentry.js"></script>
<script src="%[1]s/static/sentry-init.js" data-dsn="%[2]s" data-release="ferry@browser-test" data-tenant="ten_0123456789abcdef0123456789abcdef" data-user="0f0e0d0c0b0a09080706050403020100"></script>
<script src="/test.js"></script></head><body>test page</body></html>`, ferryURL, pageDSN)
		}
	}))
	defer page.Close()
	f := startFerry(t, t.TempDir(), map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": u.dsn(), "FERRY_BASE_URL": page.URL})
	ferryURL, pageDSN = f.url, f.dsn()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	ua, err := chromedp.Run(ctx, chromedp.Evaluate[string]("navigator.userAgent"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.flushed === true", chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the SDK did not flush: %v", err)
	}
	got := u.waitFor(t, "event", 3, 30*time.Second)
	u.waitFor(t, "session", 1, 30*time.Second)
	assertNothingPlanted(t, u, f.dir)
	browserWant := "Chrome"
	if strings.Contains(ua, "HeadlessChrome/") {
		browserWant = "HeadlessChrome"
	}
	var texts []string
	for _, g := range got {
		c := contextsOf(t, g.Payload)
		if c["browser"]["name"] != browserWant || c["os"]["name"] != "Linux" || c["browser"]["version"] == nil {
			t.Errorf("browser/OS of %s lost (UA %q): %s", g.EventID, ua, g.Payload)
		}
		var ev struct {
			User      map[string]string `json:"user"`
			Release   string            `json:"release"`
			Message   string            `json:"message"`
			Exception struct {
				Values []struct{ Type, Value string } `json:"values"`
			} `json:"exception"`
			Tags map[string]string `json:"tags"`
		}
		json.Unmarshal(g.Payload, &ev)
		if len(ev.User) != 1 || len(ev.User["id"]) != 32 || ev.Release != "ferry@browser-test" || ev.Tags["ferry_tenant"] != "" {
			t.Errorf("user/release/tags of %s: %s", g.EventID, g.Payload)
		}
		texts = append(texts, ev.Message)
		for _, x := range ev.Exception.Values {
			texts = append(texts, x.Type+": "+x.Value)
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"Error: no access for [email] with token [jwt]", "payment with card **** **** **** 1111 failed", "TypeError: uncaught: [email] at [ip]"} {
		if !strings.Contains(all, want) {
			t.Errorf("events lack %q:\n%s", want, all)
		}
	}
}

// Upstream down: events queue in the outbox; after a restart with the
// upstream back, every one arrives.
func TestEventsQueueWhileUpstreamIsDownAndArriveAfterARestart(t *testing.T) {
	u := newUpstream(t)
	u.set(503, nil)
	dir := t.TempDir()
	env := map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": u.dsn()}
	f := startFerry(t, dir, env)
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: f.dsn(), Transport: sentry.NewHTTPSyncTransport()})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	want := map[string]bool{}
	for i := range 12 {
		id := hub.CaptureMessage(fmt.Sprintf("queued %d", i))
		if id == nil {
			t.Fatal("sentry-go dropped an event")
		}
		want[string(*id)] = true
	}
	if len(u.received()) != 0 {
		t.Fatal("upstream is down but received events")
	}
	f.stop()
	u.set(200, nil)
	startFerry(t, dir, env) // the same data directory: the outbox survived
	got := u.waitFor(t, "event", len(want), 30*time.Second)
	for _, g := range got {
		delete(want, g.EventID)
	}
	if len(want) != 0 {
		t.Errorf("%d events never arrived: %v", len(want), want)
	}
}

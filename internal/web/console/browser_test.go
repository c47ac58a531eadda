package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"ferry/internal/cli"
	"ferry/internal/staff"
)

// The browser test drives the staff console in Debian's Chromium as staff
// would, against `ferry demo` run in-process. Screenshots go to a temp
// directory; FERRY_UPDATE_SCREENSHOTS=1 writes them to docs/screenshots.

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
		t.Fatal("chromium not found and FERRY_REQUIRE_INTEROP=1: apt-get install -y chromium")
	}
	t.Skip("chromium not found (apt-get install -y chromium); skipping the console browser test")
	return ""
}

type demoJSON struct {
	AppURL            string `json:"app_url"`
	AppPageURL        string `json:"app_page_url"`
	ODataURL          string `json:"odata_url"`
	Token             string `json:"token"`
	ConsoleURL        string `json:"console_url"`
	StaffUser         string `json:"staff_user"`
	StaffPassword     string `json:"staff_password"`
	StaffTOTPSecret   string `json:"staff_totp_secret"`
	AuditorUser       string `json:"auditor_user"`
	AuditorPassword   string `json:"auditor_password"`
	AuditorTOTPSecret string `json:"auditor_totp_secret"`
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func runDemo(t *testing.T, dir string) demoJSON {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuf{}
	done := make(chan error, 1)
	go func() {
		// The console is the same on both platforms; Connect keeps its request
		// log to the one feed request this test reads.
		done <- cli.Run(ctx, []string{"ferry", "demo", "--data-dir", dir, "--issues", "200", "--platform", "connect"}, func(string) string { return "" }, nil, io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("ferry demo did not stop")
		}
	})
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-done:
			t.Fatalf("ferry demo stopped: %v\n%s", err, logs)
		default:
		}
		var d demoJSON
		if b, err := os.ReadFile(filepath.Join(dir, "demo.json")); err == nil && json.Unmarshal(b, &d) == nil && d.ConsoleURL != "" {
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no demo.json\n%s", logs)
	return demoJSON{}
}

// user is one person in their own browser context (their own cookies).
type user struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func (u *user) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		if png, err := chromedp.Run(u.ctx, chromedp.FullScreenshot(100)); err == nil {
			p := filepath.Join(os.TempDir(), "ferry-console-failure.png")
			os.WriteFile(p, png, 0o644)
			u.t.Logf("screenshot of the failure: %s", p)
		}
		u.t.Fatalf("%s: %v", what, err)
	}
}

func get[T any](u *user, what string, a chromedp.Action[T]) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		u.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (u *user) shot(name string) {
	u.t.Helper()
	png := get(u, "screenshot "+name, chromedp.Screenshot(chromedp.CSS("body")))
	if err := os.WriteFile(filepath.Join(u.shots, name), png, 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// signIn fills the sign-in form with a code from the authenticator, as a
// person would, and waits for the overview.
func (u *user) signIn(console, name, password, secret string) {
	u.t.Helper()
	code, _ := staff.TOTPCode(secret, time.Now())
	u.do("sign in as "+name,
		chromedp.Navigate(console+"login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("username"), name),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("perms")))
}

func (u *user) text(sel string) string {
	u.t.Helper()
	return get(u, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func TestConsoleInChromium(t *testing.T) {
	bin := chromium(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	d := runDemo(t, dir)
	shots := t.TempDir()
	if os.Getenv("FERRY_UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "..", "docs", "screenshots")
	}

	// A feed request to decrypt later, with a marker in its query.
	req, _ := http.NewRequest("GET", d.ODataURL+"Issues?$top=2&$select=Key,Summary&marker=browser-marker-7", nil)
	req.SetBasicAuth("powerbi", d.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("feed request: %v %v", res, err)
	}
	res.Body.Close()

	root, person := startChromium(t, bin, shots)

	// 1. Support signs in with password and TOTP.
	sup := person()
	sup.do("sign-in page", chromedp.Navigate(d.ConsoleURL+"login"), chromedp.WaitVisible(chromedp.ID("login-form")))
	sup.shot("console-sign-in.png")
	sup.signIn(d.ConsoleURL, d.StaffUser, d.StaffPassword, d.StaffTOTPSecret)
	if who := sup.text("#role"); who != "support" {
		t.Fatalf("signed in with role %q", who)
	}
	sup.do("tenants", chromedp.Navigate(d.ConsoleURL+"tenants"), chromedp.WaitVisible(chromedp.CSS("#tenants tr[data-tenant]")))
	tenants := get(sup, "tenant ids", chromedp.AttributesAll(chromedp.CSSAll("#tenants tr[data-tenant]")))
	tenantID := tenants[0]["data-tenant"]
	sup.shot("console-tenants.png")
	sup.do("inventory", chromedp.Navigate(d.ConsoleURL+"inventory"), chromedp.WaitVisible(chromedp.CSS(`#inventory tr[data-table="request_log"]`)))
	sup.shot("console-inventory.png")

	// 2. The request log: find the feed request (written in the
	// background: reload until it is listed), open it.
	var entryHref string
	for i := 0; i < 50 && entryHref == ""; i++ {
		sup.do("request log", chromedp.Navigate(d.ConsoleURL+"reqlog?tenant="+tenantID), chromedp.WaitVisible(chromedp.ID("entries")))
		for _, a := range get(sup, "entry links", chromedp.AttributesAll(chromedp.CSSAll(`#entries a`))) {
			entryHref = a["href"]
		}
		if entryHref == "" {
			time.Sleep(200 * time.Millisecond) // waiting for the entry to be written, not asserting an absence
		}
	}
	if entryHref == "" {
		t.Fatal("the feed request never appeared in the console's request log")
	}
	sup.shot("console-request-log.png")
	sup.do("entry", chromedp.Navigate(strings.TrimSuffix(d.ConsoleURL, "/console/")+entryHref), chromedp.WaitVisible(chromedp.ID("decrypt-form")))
	if body := sup.text("main"); strings.Contains(body, "browser-marker-7") {
		t.Fatal("the entry page shows the sealed request before break-glass")
	}
	// Without a reason the form does not even go out; the browser says why.
	if valid := get(sup, "form validity", chromedp.Evaluate[bool](`document.getElementById("decrypt-form").checkValidity()`)); valid {
		t.Fatal("the break-glass form is valid with no reason and no ticket")
	}
	// Past the browser's checks, the server refuses a reason that is too short.
	sup.do("short reason",
		chromedp.RemoveAttribute(chromedp.ID("reason"), "minlength"),
		chromedp.SendKeys(chromedp.ID("reason"), "because"),
		chromedp.SendKeys(chromedp.ID("ticket"), "SUP-4711"),
		chromedp.Click(chromedp.ID("decrypt")),
		chromedp.WaitVisible(chromedp.ID("decrypt-error")))
	if msg := sup.text("#decrypt-error"); !strings.Contains(msg, "at least 10 characters") {
		t.Errorf("short reason: %q", msg)
	}
	if body := sup.text("main"); strings.Contains(body, "browser-marker-7") {
		t.Fatal("a refused break-glass showed the request")
	}
	sup.shot("console-break-glass.png")
	sup.do("decrypt with a reason",
		chromedp.SetValue(chromedp.ID("reason"), "customer reports a slow Power BI refresh"),
		chromedp.Click(chromedp.ID("decrypt")),
		chromedp.WaitVisible(chromedp.ID("recorded")))
	if q := sup.text("#req-query"); !strings.Contains(q, "marker=browser-marker-7") {
		t.Errorf("decrypted query = %q", q)
	}
	sup.shot("console-decrypted.png")
	sup.do("sign out", chromedp.Navigate(d.ConsoleURL), chromedp.WaitVisible(chromedp.ID("signout")), chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("login-form")))

	// 3. A developer, added with `ferry staff add` and enrolled on the
	// enrolment page, cannot open what support can (tenants' Account Data).
	dev := person()
	enrolAndSignIn(dev, dir, d, "dana", "developer", "console-enrol.png")
	if nav := dev.text("nav"); strings.Contains(nav, "Tenants") || !strings.Contains(nav, "Request log") {
		t.Errorf("developer navigation = %q", nav)
	}
	dev.do("tenants as developer", chromedp.Navigate(d.ConsoleURL+"tenants"), chromedp.WaitVisible(chromedp.ID("error")))
	if msg := dev.text("#error"); !strings.Contains(msg, "may not open this page") {
		t.Errorf("developer on tenants: %q", msg)
	}
	if body := dev.text("main"); strings.Contains(body, tenantID) {
		t.Error("the refusal page shows tenant data")
	}
	dev.shot("console-forbidden.png")

	// 4. The auditor sees the decryption, with reason and ticket, and the
	// developer's refusal, in a chain that verifies.
	aud := person()
	aud.signIn(d.ConsoleURL, d.AuditorUser, d.AuditorPassword, d.AuditorTOTPSecret)
	aud.do("audit trail", chromedp.Navigate(d.ConsoleURL+"audit?verify=1"), chromedp.WaitVisible(chromedp.ID("verify-ok")))
	trail := aud.text("#trail")
	for _, want := range []string{"reqlog.decrypt", "customer reports a slow Power BI refresh", "SUP-4711", d.StaffUser, "console.forbidden", "dana"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
	aud.shot("console-audit.png")
	aud.do("staff and roles", chromedp.Navigate(d.ConsoleURL+"staff"), chromedp.WaitVisible(chromedp.ID("matrix")))
	aud.shot("console-staff.png")
	if root.Err() != nil {
		t.Errorf("the browser test ran out of time: %v", root.Err())
	}
}

// startChromium starts headless Chromium with one tab; person() gives a
// person in it with no cookies. (Separate browser contexts do not render
// in headless Chromium here.)
func startChromium(t *testing.T, bin, shots string) (context.Context, func() *user) {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	t.Cleanup(cancelAlloc)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	root, cancelTimeout := context.WithTimeout(root, 120*time.Second)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return root, func() *user {
		if _, err := chromedp.Call(root, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatalf("clear cookies: %v", err)
		}
		return &user{t: t, ctx: root, shots: shots}
	}
}

// enrolAndSignIn adds a staff member with `ferry staff add` on the demo's
// data directory, enrols them on the enrolment page (a screenshot of it if
// shot is set) and signs them in, as a new member would.
func enrolAndSignIn(u *user, dir string, d demoJSON, name, role, shot string) {
	u.t.Helper()
	var out strings.Builder
	if err := cli.Run(context.Background(), []string{"ferry", "staff", "add", "--user", name, "--role", role, "--name", strings.ToUpper(name[:1]) + name[1:]},
		func(k string) string {
			return map[string]string{"FERRY_DATA_DIR": dir, "FERRY_CONSOLE_URL": strings.TrimSuffix(d.ConsoleURL, "/console/"), "FERRY_LOG_LEVEL": "error", "USER": "ops"}[k]
		}, nil, &out, io.Discard); err != nil {
		u.t.Fatalf("staff add: %v", err)
	}
	link := regexp.MustCompile(`http://\S+/console/enrol/\S+`).FindString(out.String())
	u.do("enrolment page", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("totp-secret")))
	secret := u.text("#totp-secret")
	if shot != "" {
		u.shot(shot)
	}
	code, _ := staff.TOTPCode(secret, time.Now())
	password := "a long passphrase for the " + role
	u.do("enrol",
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.SendKeys(chromedp.ID("password2"), password),
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("enrol-submit")),
		chromedp.WaitVisible(chromedp.ID("enrolled")))
	// The enrolment used this time step's code: sign in with the next one.
	next, _ := staff.TOTPCode(secret, time.Now().Add(30*time.Second))
	u.do(name+" signs in",
		chromedp.Navigate(d.ConsoleURL+"login"), chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("username"), name), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.SendKeys(chromedp.ID("code"), next), chromedp.Click(chromedp.ID("login-submit")), chromedp.WaitVisible(chromedp.ID("perms")))
}

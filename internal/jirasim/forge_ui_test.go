package jirasim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestForgeCustomUIHostInChromium loads a Custom UI page in the simulated
// Jira in Chromium. The page talks to its host only through
// window.__bridge.callBridge, exactly as @forge/bridge does; the host
// carries invokeRemote to the remote with a FIT naming the page's user,
// answers getContext, and runs requestJira as that user. Switching the
// user switches the principal.
func TestForgeCustomUIHostInChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if requireInterop() {
			t.Fatal("chromium not found and FERRY_REQUIRE_INTEROP=1: apt-get install -y chromium")
		}
		t.Skip("chromium not found (apt-get install -y chromium); skipping the browser test")
	}
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	s, _ := newTestSim(t, Options{Issues: 20, Seed: 81})
	rm := newForgeRemote(t, s)
	rm.setRespond(func(r *http.Request, c remoteCall) (int, any) {
		if r.URL.Path != "/forge/ui/hello" {
			return 200, map[string]any{}
		}
		return 200, map[string]any{"principal": c.Claims["principal"], "greeting": c.Body["greeting"], "x": r.URL.Query().Get("x"), "header": r.Header.Get("x-test")}
	})
	in := installForge(t, s, testForgeApp(rm))
	restricted, admin := s.Users()[1], s.Users()[0]
	pageURL, err := s.ForgePageURL(in.ID, "ferry-admin", restricted.AccountID)
	if err != nil {
		t.Fatal(err)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 800))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()
	var mu sync.Mutex
	var exceptions []string
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(frame chromedp.QueryOption, sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), frame))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	load := func(u string, who User) chromedp.QueryOption {
		t.Helper()
		if u != "" {
			step("open the host page", chromedp.Navigate(u))
		}
		step("the host page is up", chromedp.WaitVisible(chromedp.ID("app-frame")))
		nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("#app-frame")))
		if err != nil {
			t.Fatal(err)
		}
		frame := chromedp.FromNode(nodes[0])
		// Wait on what the page shows once every bridge call has answered.
		step("the Custom UI hears back", chromedp.WaitReady(chromedp.CSS("body[data-unknown-call]"), frame),
			chromedp.Poll[chromedp.Void](`(() => { const d = document.querySelector("#app-frame").contentDocument;
				return d && !["remote", "myself", "context-account"].some(id => d.getElementById(id).textContent === "…"); })()`))
		return frame
	}

	frame := load(pageURL, restricted)
	if got := text(frame, "#context-account"); got != restricted.AccountID+" jira:adminPage ferry-admin" {
		t.Errorf("getContext: %q", got)
	}
	if got := text(frame, "#remote"); !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"principal":"`+restricted.AccountID+`"`) ||
		!strings.Contains(got, `"greeting":"hi"`) || !strings.Contains(got, `"x":"1"`) || !strings.Contains(got, `"header":"yes"`) {
		t.Errorf("invokeRemote answer: %q", got)
	}
	if got := text(frame, "#myself"); got != "200 "+restricted.AccountID {
		t.Errorf("requestJira /myself: %q", got)
	}
	if errs := text(frame, "#errors"); errs != "" {
		t.Errorf("page errors: %s", errs)
	}
	c := rm.last("/forge/ui/hello")
	if c.Err != "" || c.Method != "POST" || c.Claims["principal"] != restricted.AccountID || c.Header.Get("x-forge-oauth-user") == "" || claim(c.Claims, "context", "moduleKey") != "ferry-admin" {
		t.Fatalf("the remote's view of the UI call: %+v", c)
	}
	if os.Getenv("FERRY_UPDATE_SCREENSHOTS") == "1" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", "jirasim-forge-custom-ui.png"), png, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// Switch user with the switcher: the page reloads as the admin.
	step("switch to the admin", chromedp.SetValue(chromedp.ID("user-switcher"), admin.AccountID), chromedp.Submit(chromedp.ID("user-switcher")))
	step("the page is the admin's", chromedp.WaitReady(chromedp.CSS(`#user-switcher option[value="`+admin.AccountID+`"][selected]`)))
	frame = load("", admin)
	if got := text(frame, "#myself"); got != "200 "+admin.AccountID {
		t.Errorf("after switching, requestJira /myself: %q", got)
	}
	if p := rm.last("/forge/ui/hello").Claims["principal"]; p != admin.AccountID {
		t.Errorf("after switching, the FIT principal is %v", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(exceptions) > 0 {
		t.Errorf("JavaScript exceptions: %v", exceptions)
	}
}

// TestForgeCDNInjectsTheBridge: the Custom UI's HTML gets the bridge
// stand-in first in its head; other files are served untouched; paths
// cannot leave the resource directory.
func TestForgeCDNInjectsTheBridge(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 5, Seed: 82})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	base := "/forge/cdn/" + strings.TrimPrefix(in.AppID, appARIPrefix) + "/main/"
	html := string(call(t, srv.URL, "GET", base+"index.html", "", nil).status(t, 200).body)
	if !strings.Contains(html, "<head>"+bridgeTag) {
		t.Fatalf("bridge not first in head:\n%s", html)
	}
	js := call(t, srv.URL, "GET", base+"app.js", "", nil).status(t, 200)
	want, _ := os.ReadFile("testdata/forge-ui/app.js")
	if string(js.body) != string(want) || !strings.HasPrefix(js.resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("app.js altered or mistyped: %s", js.resp.Header.Get("Content-Type"))
	}
	for _, p := range []string{base + "../../../forge.go", base + "%2e%2e/forge.go", base + "nope.js", "/forge/cdn/00000000-0000-4000-8000-000000000000/main/index.html"} {
		if r := call(t, srv.URL, "GET", p, "", nil); r.resp.StatusCode == 200 {
			t.Errorf("%s served", p)
		}
	}
	// A resource at a URL (a dev server) is proxied and injected too.
	dev := httptest.NewServer(http.FileServer(http.Dir("testdata/forge-ui")))
	defer dev.Close()
	app := testForgeApp(rm)
	app.ID = "ari:cloud:ecosystem::app/" + s.uuidFrom("dev-server-app")
	rm2 := newForgeRemote(t, s)
	rm2.appID = app.ID
	app.Remotes["ferry"] = rm2.srv.URL
	app.Resources["main"] = dev.URL
	in2 := installForge(t, s, app)
	html = string(call(t, srv.URL, "GET", "/forge/cdn/"+strings.TrimPrefix(in2.AppID, appARIPrefix)+"/main/index.html", "", nil).status(t, 200).body)
	if !strings.Contains(html, bridgeTag) || !strings.Contains(html, "Custom UI test page") {
		t.Fatalf("proxied resource: %s", html)
	}
}

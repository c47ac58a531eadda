package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jirasim"
)

// from is an HTTP client whose connections come from the loopback address
// ip (Linux routes all of 127.0.0.0/8 to lo): a real, different peer
// address for the server, no header involved.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) }}}
}

type feedAnswer struct {
	code       int
	retryAfter string
	errCode    string
	message    string
	clientAddr string // Ferry-Client-Address
}

func feedFrom(t *testing.T, c *http.Client, u, token string, hdr ...string) feedAnswer {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.SetBasicAuth("powerbi", token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(b, &e)
	return feedAnswer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), errCode: e.Error.Code, message: e.Error.Message,
		clientAddr: resp.Header.Get("Ferry-Client-Address")}
}

func saveNetworks(t *testing.T, d *demo, page string, nets ...string) (int, []byte) {
	t.Helper()
	return apiCall(t, d, page, "PUT", "/app-api/settings", map[string]any{"tokenMaxDays": 365,
		"creators":        map[string]any{"everyone": false, "groups": []string{}, "users": []string{}},
		"exporters":       map[string]any{"everyone": true, "groups": []string{}, "users": []string{}},
		"allowedNetworks": nets})
}

// TestIPAllowlistRefusesOtherAddressesAndBelievesOnlyTrustedProxies: a
// malformed range is refused when saved and changes nothing; once saved,
// feed requests from elsewhere get 403 saying so (and, in a header only,
// which address Ferry saw: the request log keeps no client addresses),
// and are counted.
// X-Forwarded-For moves nobody inside unless it comes from a configured
// proxy, and then only its rightmost untrusted address counts.
func TestIPAllowlistRefusesOtherAddressesAndBelievesOnlyTrustedProxies(t *testing.T) {
	onPlatforms(t, testIPAllowlistRefusesOtherAddressesAndBelievesOnlyTrustedProxies)
}

func testIPAllowlistRefusesOtherAddressesAndBelievesOnlyTrustedProxies(t *testing.T, platform string) {
	d := startSiteOn(t, platform, map[string]string{"FERRY_TRUSTED_PROXIES": "127.0.0.3"}, 20)
	page := pageFor(t, d, d.sim.Users()[0].AccountID)
	feed := d.info.ODataURL + "Issues?$top=1"
	tok := d.info.Token

	for _, bad := range [][]string{{"127.0.0.2/33"}, {"127.0.0.2/8"}, {"127.0.0.2", "office"}, {"::1/129"}} {
		code, b := saveNetworks(t, d, page, bad...)
		if code != 400 || !strings.Contains(string(b), `"field":"allowedNetworks"`) {
			t.Errorf("saving %v: %d %s", bad, code, b)
		}
	}
	if a := feedFrom(t, from("127.0.0.1"), feed, tok); a.code != 200 {
		t.Fatalf("refused ranges changed something: %+v", a)
	}

	if code, b := saveNetworks(t, d, page, "127.0.0.2/32", "2001:db8::/32"); code != 200 {
		t.Fatalf("saving the allowlist: %d %s", code, b)
	}
	before := export.FeedRefusals("ip_allowlist")
	refused := func(what string, a feedAnswer, addr string) {
		t.Helper()
		if a.code != 403 || a.errCode != "Forbidden" || !strings.Contains(a.message, "network addresses its Jira administrator allows") ||
			a.clientAddr != addr || strings.Contains(a.message, addr) {
			t.Errorf("%s: %+v, want 403 naming %s", what, a, addr)
		}
	}
	refused("from 127.0.0.1", feedFrom(t, from("127.0.0.1"), feed, tok), "127.0.0.1")
	refused("CSV from 127.0.0.1", feedFrom(t, from("127.0.0.1"), d.info.CSVURL, tok), "127.0.0.1")
	refused("spoofed X-Forwarded-For from an untrusted peer", feedFrom(t, from("127.0.0.1"), feed, tok, "X-Forwarded-For", "127.0.0.2"), "127.0.0.1")
	refused("a trusted proxy forwarding another client", feedFrom(t, from("127.0.0.3"), feed, tok, "X-Forwarded-For", "127.0.0.2, 127.0.0.9"), "127.0.0.9")
	refused("a trusted proxy itself", feedFrom(t, from("127.0.0.3"), feed, tok), "127.0.0.3")
	if n := export.FeedRefusals("ip_allowlist") - before; n != 5 {
		t.Errorf("ip_allowlist refusals counted %v, want 5", n)
	}
	for what, a := range map[string]feedAnswer{
		"from 127.0.0.2":                         feedFrom(t, from("127.0.0.2"), feed, tok),
		"through the trusted proxy":              feedFrom(t, from("127.0.0.3"), feed, tok, "X-Forwarded-For", "127.0.0.2"),
		"spoofed entry left of the real client":  feedFrom(t, from("127.0.0.3"), feed, tok, "X-Forwarded-For", "127.0.0.9, 127.0.0.2"),
		"the proxy's own address left untrusted": feedFrom(t, from("127.0.0.3"), feed, tok, "X-Forwarded-For", "127.0.0.2, 127.0.0.3"),
	} {
		if a.code != 200 {
			t.Errorf("%s: %+v", what, a)
		}
	}
	if a := feedFrom(t, from("127.0.0.3"), feed, tok, "X-Forwarded-For", "127.0.0.2, garbage"); a.code != 400 {
		t.Errorf("garbage from the trusted proxy: %+v", a)
	}
	// An unknown token gets 401, wherever it comes from: the allowlist is
	// the site's, and the token names the site.
	if a := feedFrom(t, from("127.0.0.1"), feed, export.TokenPrefix+strings.Repeat("Z", 43)); a.code != 401 {
		t.Errorf("unknown token from outside: %+v", a)
	}
	if code, _ := saveNetworks(t, d, page); code != 200 {
		t.Fatal("clearing the allowlist")
	}
	if a := feedFrom(t, from("127.0.0.1"), feed, tok); a.code != 200 {
		t.Errorf("after clearing the allowlist: %+v", a)
	}
	reachedThroughForge(t, d, "set", "get")
}

func wrongToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return export.TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// TestWrongTokensAreRateLimitedPerAddressAndPrefix: 300 wrong tokens from
// one address get 401 until its failed attempts are used up, then 429 with
// Retry-After — even for a valid token from that address — while a valid
// token from another address works. One wrong token tried from many
// addresses is limited by its prefix. Requests without a token are never
// counted. Connect only: the limits act before a token is looked up, so
// before anything is asked of the platform.
func TestWrongTokensAreRateLimitedPerAddressAndPrefix(t *testing.T) {
	d := startSite(t, nil, 20)
	feed := d.info.ODataURL + "Issues?$top=1"
	attacker := from("127.0.0.4")
	beforeAddr := export.FeedRefusals("address_rate_limit")
	start := time.Now()
	var unauthorized, limited int
	firstLimited := -1
	for i := range 300 {
		a := feedFrom(t, attacker, feed, wrongToken())
		switch a.code {
		case 401:
			unauthorized++
		case 429:
			if firstLimited < 0 {
				firstLimited = i
			}
			limited++
			if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 || a.errCode != "TooManyRequests" {
				t.Fatalf("attempt %d: 429 without a usable Retry-After: %+v", i, a)
			}
		default:
			t.Fatalf("attempt %d: %+v", i, a)
		}
	}
	// One attempt comes back every DefaultFailureRefill.
	refills := int(time.Since(start)/export.DefaultFailureRefill) + 1
	if firstLimited < export.DefaultAddressFailures || firstLimited > export.DefaultAddressFailures+refills ||
		unauthorized > export.DefaultAddressFailures+refills || limited < 300-export.DefaultAddressFailures-refills {
		t.Errorf("300 wrong tokens: first 429 at %d, %d × 401, %d × 429 (limit %d, refills %d)",
			firstLimited, unauthorized, limited, export.DefaultAddressFailures, refills)
	}
	if n := export.FeedRefusals("address_rate_limit") - beforeAddr; int(n) != limited {
		t.Errorf("address_rate_limit counted %v, want %d", n, limited)
	}
	if a := feedFrom(t, from("127.0.0.5"), feed, d.info.Token); a.code != 200 {
		t.Errorf("a valid token from another address: %+v", a)
	}
	if a := feedFrom(t, attacker, feed, d.info.Token); a.code != 429 {
		t.Errorf("a valid token from the limited address: %+v (want 429: the address is limited before any token is looked up)", a)
	}
	for range 50 {
		if a := feedFrom(t, from("127.0.0.6"), feed, ""); a.code != 401 {
			t.Fatalf("no token at all: %+v", a)
		}
	}

	// One wrong token from 40 addresses: limited by its prefix.
	stale := wrongToken()
	var prefixLimited int
	start = time.Now()
	for i := range 40 {
		a := feedFrom(t, from("127.0.1."+strconv.Itoa(10+i)), feed, stale)
		if a.code == 429 {
			prefixLimited++
		}
	}
	if refills := int(time.Since(start)/export.DefaultFailureRefill) + 1; prefixLimited < 40-export.DefaultPrefixFailures-refills {
		t.Errorf("one token from 40 addresses: %d × 429", prefixLimited)
	}
	if a := feedFrom(t, from("127.0.1.200"), feed, d.info.Token); a.code != 200 {
		t.Errorf("a valid token with another prefix: %+v", a)
	}
}

// TestEachSiteHasACapOnConcurrentFeedRequests: with the cap at 2, a third
// request while two run gets 429 with Retry-After; once they end, requests
// are served again.
func TestEachSiteHasACapOnConcurrentFeedRequests(t *testing.T) {
	onPlatforms(t, testEachSiteHasACapOnConcurrentFeedRequests)
}

func testEachSiteHasACapOnConcurrentFeedRequests(t *testing.T, platform string) {
	d := startSiteOn(t, platform, map[string]string{"FERRY_FEED_CONCURRENCY_PER_SITE": "2"}, 60)
	g := d.app.feeds.Guard
	// One request first, at full speed: what Ferry keeps briefly (the
	// site's settings and source, the owner's groups, on Forge the offline
	// token) is then at hand, and only the rows are slow.
	if code, _, body := fetch(t, d.info.ODataURL+"Issues?$top=2", d.info.Token); code != 200 {
		t.Fatalf("a first request: %d %s", code, body)
	}
	d.sim.SetKnobs(jirasim.Knobs{Latency: 2 * time.Second})
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=2", d.info.Token)
			codes[i] = code
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for g.Active(d.tenant) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("two slow requests never ran together (%d running)", g.Active(d.tenant))
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := export.FeedRefusals("site_concurrency")
	a := feedFrom(t, http.DefaultClient, d.info.ODataURL+"Issues?$top=2", d.info.Token)
	if a.code != 429 || a.retryAfter != "2" || !strings.Contains(a.message, "2 feed requests running") {
		t.Errorf("a third request: %+v", a)
	}
	if n := export.FeedRefusals("site_concurrency") - before; n != 1 {
		t.Errorf("site_concurrency counted %v", n)
	}
	d.sim.SetKnobs(jirasim.Knobs{})
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("the two running requests: %v", codes)
	}
	for g.Active(d.tenant) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("slots never came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a := feedFrom(t, http.DefaultClient, d.info.ODataURL+"Issues?$top=2", d.info.Token); a.code != 200 {
		t.Errorf("after they ended: %+v", a)
	}
	feedsReadThroughForge(t, d, d.sim.Users()[0].AccountID)
}

package harness

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/jirasim"
)

// burst sends n requests at once (made by mk) and counts the answers by
// status; it also counts 503s without Retry-After.
func burst(t *testing.T, n int, mk func(i int) *http.Request) (map[int]int, int) {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	bare := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := mk(i)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				bare++
			}
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return codes, bare
}

// TestOverloadIsShedWithRetryAfterAndRecovers floods the real binary beyond
// its in-flight limits — feeds against a slow Jira, forged installs against
// a slow install-key service — and counts: every answer is a success or a
// refusal, each 503 carries Retry-After, some requests were shed, and once
// the flood is answered the same requests succeed again (a genuine install,
// feeds). Nothing here is timed: the slow parts only make the requests of
// one burst overlap.
func TestOverloadIsShedWithRetryAfterAndRecovers(t *testing.T) {
	s := newSitesWith(t, 1, jirasim.Options{Issues: 20, Users: 2, Latency: 200 * time.Millisecond})
	env := s.ferryEnv(freeAddr(t), filepath.Join(t.TempDir(), "data"), "")
	env["FERRY_MAX_FEEDS_IN_FLIGHT"], env["FERRY_MAX_LIFECYCLE_IN_FLIGHT"] = "3", "2"
	p := startFerry(t, env)
	s.install(t, 0, p.URL)
	admin := s.sims[0].Users()[0].AccountID
	src := createSource(t, p.URL, s.pageToken(t, 0, admin), "overload")
	_, token := createToken(t, p.URL, s.pageToken(t, 0, admin), "overload")
	feed := func(int) *http.Request {
		req, _ := http.NewRequest("GET", p.URL+"/odata/"+src+"/Issues?$select=Key,Summary", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return req
	}

	codes, bare := burst(t, 40, feed)
	if codes[200]+codes[503] != 40 || codes[503] == 0 || codes[200] < 3 || bare > 0 {
		t.Fatalf("40 feeds against a limit of 3: answers %v, %d 503s without Retry-After", codes, bare)
	}
	t.Logf("feeds: %v", codes)
	for i := range 5 {
		if code, _, body := call(t, "GET", feed(0).URL.String(), nil, "Authorization", "Bearer "+token); code != 200 {
			t.Fatalf("feed %d after the flood: %d %s", i, code, body)
		}
	}

	// Forged installs with kids nobody knows: each would make Ferry ask
	// the (slow) install-key service.
	s.keyDelay.Store(int64(300 * time.Millisecond))
	// Everything but the signature is right (exp, aud, the request's qsh), so
	// only the key can tell: the most expensive forgery to refuse.
	qsh := sha256.Sum256([]byte("POST&/lifecycle/installed&"))
	forged := func(i int) *http.Request {
		tok := unsignedJWT(fmt.Sprintf(`{"alg":"RS256","kid":"forged-%d"}`, i),
			fmt.Sprintf(`{"iss":"ck-%d","aud":"%s","iat":%d,"exp":%d,"qsh":"%x"}`, i, p.URL, time.Now().Unix(), time.Now().Add(time.Minute).Unix(), qsh))
		req, _ := http.NewRequest("POST", p.URL+"/lifecycle/installed", strings.NewReader(`{"key":"ferry-bi-connector","clientKey":"ck"}`))
		req.Header.Set("Authorization", "JWT "+tok)
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	codes, bare = burst(t, 30, forged)
	if codes[401]+codes[503] != 30 || codes[503] == 0 || bare > 0 {
		t.Fatalf("30 forged installs against a limit of 2: answers %v, %d 503s without Retry-After", codes, bare)
	}
	t.Logf("forged installs: %v", codes)
	s.keyDelay.Store(0)
	// A genuine reinstall goes through (its key is known; Jira's second is
	// a new token).
	time.Sleep(installGap) // Jira's tokens carry whole seconds: not an assertion
	if _, err := s.sims[0].Install(context.Background(), p.URL, jirasim.InstallValid); err != nil {
		t.Fatalf("genuine reinstall after the flood: %v", err)
	}
	if code, _, body := call(t, "GET", feed(0).URL.String(), nil, "Authorization", "Bearer "+token); code != 200 {
		t.Fatalf("feed after the reinstall: %d %s", code, body)
	}
}

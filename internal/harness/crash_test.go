package harness

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ferry/internal/jirasim"
	"ferry/internal/store/storetest"
)

var (
	crashKills = flag.Int("harness.kills", 20, "SIGKILL trials per engine in TestCrashDurability (scripts/crash runs more)")
	crashSeed  = flag.Uint64("harness.seed", 0, "seed of the crash trials (0: from the clock; printed)")
	crashOut   = flag.String("harness.crash-report", "", "append one JSON line per trial to this file (scripts/crash)")
)

// engineURL gives a fresh PostgreSQL database for "postgres" (skipping, or
// failing in CI, when none is configured) and "" for SQLite.
func engineURL(t *testing.T, engine string) string {
	if engine == "postgres" {
		return storetest.PostgresURL(t)
	}
	return ""
}

// crashModel is what clients were told: every answered write must be there
// after any crash.
type crashModel struct {
	mu       sync.Mutex
	secret   map[int]string // site → the shared secret of its last acknowledged install
	pending  map[int]bool   // site → an install was sent and not answered
	tokens   []ackedToken
	rotated  int // rotate-kek runs that exited 0
	answered map[string]int
	last     map[int]time.Time // site → when its last install was sent
}

// installGap spaces two installs of one site: Jira's lifecycle tokens carry
// whole seconds and no jti, so two of one second are the same token (which
// Ferry accepts once), and Jira never reinstalls that fast.
const installGap = 1100 * time.Millisecond

// waitInstallGap sleeps until site i may be installed again.
func (m *crashModel) waitInstallGap(ctx context.Context, i int) bool {
	m.mu.Lock()
	wait := time.Until(m.last[i].Add(installGap))
	m.mu.Unlock()
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
	}
	m.mu.Lock()
	m.last[i] = time.Now()
	m.mu.Unlock()
	return true
}

type ackedToken struct {
	site    int
	id      string
	plain   string
	source  string
	state   tokenState
	checked bool // a revoked token checked once already
}

// checkTokens proves each acknowledged token's state: a created one reads
// its feed (its row, the tenant's keyset and shared secret are there), a
// revoked one is refused.
func checkTokens(t *testing.T, appURL string, tokens []ackedToken, when string) int {
	t.Helper()
	n := 0
	for k, tk := range tokens {
		code, body := callFrom(t, loopback(k), "GET", appURL+"/odata/"+tk.source+"/Issues?$top=1&$select=Key", "Authorization", "Bearer "+tk.plain)
		switch {
		case tk.state == live && code != 200:
			t.Fatalf("%s: acknowledged token %s of site %d: %d %s", when, tk.id, tk.site, code, body)
		case tk.state == revoked && code != 401:
			t.Fatalf("%s: token %s of site %d, revocation acknowledged, answers %d %s", when, tk.id, tk.site, code, body)
		}
		if tk.state != revoking {
			n++
		}
	}
	return n
}

type tokenState int

const (
	live     tokenState = iota
	revoking            // a revocation was sent and not answered: either state may survive
	revoked             // the revocation was acknowledged: the token must stay dead
)

// liveToken picks a token in use (nil if none).
func (m *crashModel) liveToken(r *rand.Rand) *ackedToken {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range 20 {
		if tk := &m.tokens[r.IntN(len(m.tokens))]; tk.state == live {
			return tk
		}
	}
	return nil
}

func (m *crashModel) answer(route string) { m.mu.Lock(); m.answered[route]++; m.mu.Unlock() }

// trialReport is one SIGKILL trial, for the long run's record.
type trialReport struct {
	Engine          string         `json:"engine"`
	Trial           int            `json:"trial"`
	LoadMillis      int            `json:"load_ms"`
	Installs        int            `json:"installs_acked"`
	Tokens          int            `json:"tokens_acked"`
	Rotations       int            `json:"rotations_acked"`
	RotationKilled  bool           `json:"rotation_killed"`
	Answered        map[string]int `json:"answered"`
	Logged          map[string]int `json:"logged"`
	LostLogEntries  int            `json:"lost_log_entries"`
	IntegrityCheck  string         `json:"integrity_check,omitempty"`
	RestartMillis   int            `json:"restart_ms"`
	VerifiedTokens  int            `json:"verified_tokens"`
	KEKVersionsHeld int            `json:"kek_versions"`
}

// TestCrashDurabilityUnderSIGKILL runs Ferry as a real process under mixed
// load — installs and reinstalls from simulated Jira sites, access tokens
// created through the app API, feed requests, and `ferry keys rotate-kek`
// from a second process — and kills it with SIGKILL at a random moment,
// again and again (sometimes the rotation too). After each restart every
// acknowledged write is there: each site's last acknowledged install (its
// shared secret opens: Jira's signed page loads and feeds act as the user),
// every acknowledged token (its feed answers), every acknowledged KEK
// version (/readyz: every recorded version opens and checks); the SQLite
// file passes integrity_check. Request-log entries lost to each kill are
// counted and reported (bounded by reqlog's window, see the README).
func TestCrashDurabilityUnderSIGKILL(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { crashTrials(t, engine, *crashKills) })
	}
}

func crashTrials(t *testing.T, engine string, kills int) {
	dbURL := engineURL(t, engine)
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-harness.seed to repeat)", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	s := newSites(t, 3, 15, 3)
	addr := freeAddr(t)
	dir := filepath.Join(t.TempDir(), "data")
	env := s.ferryEnv(addr, dir, dbURL)
	p := startFerry(t, env)
	m := &crashModel{secret: map[int]string{}, pending: map[int]bool{}, answered: map[string]int{}, last: map[int]time.Time{}}
	sources := map[int]string{}
	admins := map[int]string{}
	for i, sim := range s.sims {
		m.waitInstallGap(context.Background(), i)
		in := s.install(t, i, p.URL)
		m.secret[i] = in.SharedSecret
		admins[i] = sim.Users()[0].AccountID
		sources[i] = createSource(t, p.URL, s.pageToken(t, i, admins[i]), fmt.Sprintf("site %d", i))
		id, plain := createToken(t, p.URL, s.pageToken(t, i, admins[i]), "first")
		m.tokens = append(m.tokens, ackedToken{site: i, id: id, plain: plain, source: sources[i]})
	}
	db := openDatabase(t, engine, firstNonEmpty(dbURL, dir))
	logged := func() map[string]int {
		out := map[string]int{}
		for _, line := range db.rows(t, `SELECT route, count(*) FROM request_log GROUP BY route`) {
			route, n, _ := strings.Cut(line, " | ")
			var k int
			fmt.Sscan(n, &k)
			out[route] = k
		}
		return out
	}
	var report *os.File
	if *crashOut != "" {
		f, err := os.OpenFile(*crashOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		report = f
	}
	totalLost, totalAnswered := 0, 0
	for trial := 1; trial <= kills; trial++ {
		before := logged()
		m.answered = map[string]int{}
		tokensBefore, rotatedBefore := len(m.tokens), m.rotated
		installsAcked := 0
		ctx, stopLoad := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		worker := func(fn func(r *rand.Rand)) {
			wg.Add(1)
			r := rand.New(rand.NewPCG(rnd.Uint64(), 2))
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					fn(r)
				}
			}()
		}
		// Installs: one at a time, so the model knows which secret each site holds.
		worker(func(r *rand.Rand) {
			i := r.IntN(len(s.sims))
			if !m.waitInstallGap(ctx, i) {
				return
			}
			m.mu.Lock()
			m.pending[i] = true
			m.mu.Unlock()
			in, err := s.sims[i].Install(ctx, p.URL, jirasim.InstallValid)
			if err == nil {
				m.mu.Lock()
				m.secret[i], m.pending[i] = in.SharedSecret, false
				installsAcked++
				m.mu.Unlock()
				m.answer("POST /lifecycle/installed")
			}
		})
		// Tokens through the app API, as a user on the app's page would.
		worker(func(r *rand.Rand) {
			i := r.IntN(len(s.sims))
			page, ok := tryPageToken(ctx, s, i, admins[i])
			if !ok {
				return
			}
			m.answer("GET /app/data-sources")
			var out struct{ ID, Token string }
			code, err := tryJSON(ctx, "POST", p.URL+"/app-api/tokens", "JWT "+page, `{"label":"crash","days":30}`, &out)
			switch {
			case err == nil && code == 201 && out.Token != "":
				m.mu.Lock()
				m.tokens = append(m.tokens, ackedToken{site: i, id: out.ID, plain: out.Token, source: sources[i]})
				m.mu.Unlock()
				m.answer("POST /app-api/tokens")
			case err == nil && code == 409:
				// The user's active tokens are at their cap: revoke the oldest.
				m.answer("POST /app-api/tokens")
				m.mu.Lock()
				var victim *ackedToken
				for k := range m.tokens {
					if tk := &m.tokens[k]; tk.site == i && tk.state == live {
						victim = tk
						break
					}
				}
				if victim != nil {
					victim.state = revoking
				}
				m.mu.Unlock()
				if victim == nil {
					return
				}
				code, err := tryJSON(ctx, "DELETE", p.URL+"/app-api/tokens/"+victim.id, "JWT "+page, "", nil)
				if err == nil && code == 204 {
					m.mu.Lock()
					victim.state = revoked
					m.mu.Unlock()
					m.answer("DELETE /app-api/tokens/{id}")
				}
			}
		})
		// Feeds, twice over: the request log's heaviest traffic.
		for range 2 {
			worker(func(r *rand.Rand) {
				tk := m.liveToken(r)
				if tk == nil {
					return
				}
				code, err := tryGet(ctx, p.URL+"/odata/"+tk.source+"/Issues?$top=2&$select=Key", tk.plain)
				if err == nil && code == 200 {
					m.answer("GET /odata/{source}/{rest...}")
				}
			})
		}
		// Key rotation from a second process, in half of the trials.
		var rotation *exec.Cmd
		rotationDone := make(chan error, 1)
		if rnd.IntN(2) == 0 {
			rotation = exec.Command(ferryBinary(t), "keys", "rotate-kek")
			rotation.Env = envList(env)
			if err := rotation.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { rotationDone <- rotation.Wait() }()
		}
		load := time.Duration(150+rnd.IntN(750)) * time.Millisecond
		time.Sleep(load) // how long the load runs before the crash: not an assertion
		p.kill()
		rotationKilled := false
		if rotation != nil && rnd.IntN(3) == 0 {
			rotation.Process.Signal(syscall.SIGKILL)
			rotationKilled = true
		}
		stopLoad()
		wg.Wait()
		if rotation != nil {
			err := <-rotationDone
			if err == nil {
				m.rotated++
			} else if !rotationKilled {
				// The server's crash does not concern a rotation in another
				// process: it must finish.
				t.Fatalf("trial %d: ferry keys rotate-kek failed while the server crashed: %v", trial, err)
			}
		}

		rep := trialReport{Engine: engine, Trial: trial, LoadMillis: int(load / time.Millisecond), Installs: installsAcked,
			Tokens: len(m.tokens) - tokensBefore, Rotations: m.rotated - rotatedBefore, RotationKilled: rotationKilled, Answered: m.answered}
		if engine == "sqlite" {
			rep.IntegrityCheck = strings.Join(db.rows(t, `PRAGMA integrity_check`), "; ")
			if rep.IntegrityCheck != "ok" {
				t.Fatalf("trial %d: integrity_check after SIGKILL: %s", trial, rep.IntegrityCheck)
			}
		}
		restart := time.Now()
		p = startFerry(t, env) // refuses a missing, foreign or half-rotated key: start-up checks every KEK version
		rep.RestartMillis = int(time.Since(restart) / time.Millisecond)

		// Every recorded KEK version opens and checks, nothing is wrapped
		// without a version.
		if code, _, body := call(t, "GET", p.URL+"/readyz", nil); code != 200 {
			t.Fatalf("trial %d: /readyz after restart: %d %s\n%s", trial, code, body, p.logs)
		}
		out, _, code := runFerry(t, env, "keys", "list")
		if code != 0 {
			t.Fatalf("trial %d: keys list: exit %d", trial, code)
		}
		rep.KEKVersionsHeld = strings.Count(out, "version ")
		if rep.KEKVersionsHeld < 1+m.rotated || strings.Count(out, "primary") != 1 {
			t.Fatalf("trial %d: %d rotations acknowledged, key versions:\n%s", trial, m.rotated, out)
		}
		// A site whose last install went unanswered is installed again, as
		// Jira retries: then the model knows its secret again.
		for i := range s.sims {
			if m.pending[i] {
				m.waitInstallGap(context.Background(), i)
				in := s.install(t, i, p.URL)
				m.secret[i], m.pending[i] = in.SharedSecret, false
			}
			// The acknowledged secret is the one Ferry holds, and it opens:
			// Jira's page JWT, signed with it, is accepted.
			if got, _ := s.sims[i].Installation(addonKey); got.SharedSecret != m.secret[i] {
				t.Fatalf("trial %d: site %d: model and site disagree", trial, i)
			}
			s.pageToken(t, i, admins[i])
		}
		// Every token acknowledged in this trial works, and a sample of the
		// older ones: each proves its row, the tenant's keyset and secret.
		check := append([]ackedToken(nil), m.tokens[tokensBefore:]...)
		for range 3 {
			check = append(check, m.tokens[rnd.IntN(tokensBefore)])
		}
		for k := range m.tokens {
			if m.tokens[k].state == revoked && !m.tokens[k].checked {
				check = append(check, m.tokens[k])
				m.tokens[k].checked = true
			}
		}
		rep.VerifiedTokens = checkTokens(t, p.URL, check, fmt.Sprintf("trial %d", trial))
		// The request log: entries of answered requests that did not reach
		// the database before the kill (net count; measured, not asserted).
		after := logged()
		rep.Logged = map[string]int{}
		for route, n := range m.answered {
			got := after[route] - before[route]
			rep.Logged[route] = got
			if n > got {
				rep.LostLogEntries += n - got
			}
			totalAnswered += n
		}
		totalLost += rep.LostLogEntries
		if report != nil {
			b, _ := json.Marshal(rep)
			fmt.Fprintln(report, string(b))
		}
		t.Logf("trial %2d: load %4d ms, acked %d installs, %d tokens, %d rotations (rotation killed %v); %d log entries lost of %d answered",
			trial, rep.LoadMillis, rep.Installs, rep.Tokens, rep.Rotations, rotationKilled, rep.LostLogEntries, sum(m.answered))
	}
	// At the end, every token ever acknowledged, created or revoked.
	checkTokens(t, p.URL, m.tokens, fmt.Sprintf("after %d kills", kills))
	t.Logf("%s: %d kills, %d tokens and %d rotations acknowledged and present; request log: %d of %d answered requests' entries lost in all",
		engine, kills, len(m.tokens), m.rotated, totalLost, totalAnswered)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

package reqlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry/internal/apperr"
	"ferry/internal/audit"
	"ferry/internal/keys"
	"ferry/internal/logging"
	"ferry/internal/reqinfo"
	"ferry/internal/reqlog"
	"ferry/internal/reqlog/reqlogtest"
	"ferry/internal/staff"
	"ferry/internal/staff/stafftest"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

const (
	jwt     = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
	email   = "ada.lovelace@example.org"
	account = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"
	pat     = "fry_AbCdEfGh12345678ijkl"
	skip    = "c2tpcHRva2VuLWN1cnNvci0xMjM0NQ"
)

type fixture struct {
	db    *store.DB
	ring  *keys.Ring
	kek   *keys.LocalKEK
	store *reqlog.Store
	log   *reqlog.Log
	srv   *httptest.Server
	logs  *syncBuffer

	trail *audit.Trail
	staff *staff.Store
	sue   staff.Principal // a signed-in support member
}

// decrypt opens an entry as a signed-in support member would: break glass
// (recorded) for the entry, then decrypt with the grant.
func (f *fixture) decrypt(t *testing.T, s *reqlog.Store, id string) (reqlog.Entry, reqlog.Request, error) {
	t.Helper()
	tenant := ""
	if e, err := s.Get(context.Background(), id, 60); err == nil {
		tenant = e.TenantID
	}
	g := stafftest.Grant(t, f.staff, f.sue, staff.DecryptRequestLog, tenant, id)
	return s.DecryptRequest(context.Background(), g, id, 60)
}

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

// responseCanary is what every test handler writes into its responses.
var responseCanary = "RESPONSE-CANARY-" + fmt.Sprint(time.Now().UnixNano())

// newFixture wires the request log in front of a mux of generic handlers
// standing in for OData, CSV, app API and error ingest.
func newFixture(t *testing.T, db *store.DB, o reqlog.Options) *fixture {
	t.Helper()
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, kek: kek, ring: keys.NewRing(db, kek), logs: &syncBuffer{}}
	if err := f.ring.EnsureTenant(context.Background(), "t1"); err != nil {
		t.Fatal(err)
	}
	slogger := logging.New(f.logs, logging.Options{Format: "json", Level: "debug"})
	f.store = reqlog.NewStore(db, f.ring)
	f.trail = audit.New(db, f.ring, audit.DirTarget{Dir: t.TempDir()}, nil)
	f.staff = staff.NewStore(db, f.ring, f.trail)
	f.sue = stafftest.SignedIn(t, f.staff, "sue", staff.Support)
	if o.Logger == nil {
		o.Logger = slogger
	}
	f.log = reqlog.New(f.store, o)
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request) {
		reqinfo.SetIdentity(r.Context(), "t1", r.Header.Get("X-Test-User"))
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"value":[{"summary":%q,"read":%d}]}`, responseCanary, len(body))
	}
	mux.HandleFunc("GET /odata/{source}/Issues", page)
	mux.HandleFunc("GET /export/{source}/issues.csv", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprintf(w, "key,summary\nP-1,%s\n", responseCanary)
	})
	mux.HandleFunc("POST /app-api/echo", page)
	mux.HandleFunc("POST /errors/api/{project}/envelope/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		apperr.Write(w, r, slogger, apperr.Wrap(fmt.Errorf("upstream said 401 for %s with jwt=%s", email, jwt), apperr.EINTERNAL, "upstream failed"))
	})
	mux.HandleFunc("GET /app-api/bad", func(w http.ResponseWriter, r *http.Request) {
		apperr.Write(w, r, slogger, apperr.Invalid("user", "unknown user %s", email))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	f.srv = httptest.NewServer(f.log.Handler(func(r *http.Request) string { _, p := mux.Handler(r); return p }, mux))
	t.Cleanup(func() {
		f.srv.Close()
		f.log.Close(context.Background())
	})
	return f
}

func (f *fixture) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res
}

func (f *fixture) flush(t *testing.T) {
	t.Helper()
	if err := f.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestContractRequestLogNeverStoresResponseBody(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, reqlog.Options{})
		reqCanary := "REQUEST-CANARY-" + fmt.Sprint(time.Now().UnixNano())
		hdr := map[string]string{"Content-Type": "application/json", "Authorization": "JWT " + jwt}
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/odata/src1/Issues?$top=5&q=" + reqCanary, ""},
			{"GET", "/export/src1/issues.csv?note=" + reqCanary, ""},
			{"POST", "/app-api/echo", `{"note":"` + reqCanary + `"}`},
			{"POST", "/errors/api/7/envelope/", `{"message":"` + reqCanary + `"}`},
		} {
			res := f.do(t, c.method, c.path, strings.NewReader(c.body), hdr)
			if b, _ := io.ReadAll(res.Body); c.method == "GET" && !strings.Contains(string(b), responseCanary) {
				t.Fatalf("%s: handler did not answer with the canary: %s", c.path, b)
			}
		}
		f.flush(t)
		f.log.Close(context.Background())

		entries, err := f.store.List(context.Background(), "t1", time.Time{}, 100)
		if err != nil || len(entries) < 2 {
			t.Fatalf("List = %d entries, %v", len(entries), err)
		}
		for _, e := range entries {
			_, req, err := f.decrypt(t, f.store, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			all := req.Path + "?" + req.Query + " " + req.Body
			if !strings.Contains(all, reqCanary) {
				t.Errorf("%s: decrypted request lacks the request canary: %+v", e.Route, req)
			}
			if strings.Contains(all, responseCanary) {
				t.Errorf("%s: decrypted request holds the response canary", e.Route)
			}
		}
		// The reply appears nowhere; the request only sealed.
		reqlogtest.AssertNoBytes(t, db, responseCanary)
		reqlogtest.AssertNoBytes(t, db, reqCanary)
	})
}

func TestContractRequestLogKeepsMetadataAndSealsRequestWithoutSecrets(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, reqlog.Options{})
		ctx := context.Background()
		body := `{"sharedSecret":"s3cr3t-shared-0123456789","clientKey":"ck","owner":"` + email + `"}`
		f.do(t, "POST", "/app-api/echo?jwt="+jwt+"&%24skiptoken="+skip+"&$top=5&token="+pat, strings.NewReader(body), map[string]string{
			"Content-Type": "application/json", "Authorization": "JWT " + jwt, "Cookie": "session=" + pat,
			"User-Agent": "PowerBI/2.0", "OData-Version": "4.0", "X-Test-User": account,
		})
		f.do(t, "GET", "/app-api/bad", nil, nil)
		f.do(t, "GET", "/healthz", nil, nil)
		f.flush(t)

		entries, err := f.store.List(ctx, "t1", time.Time{}, 10)
		if err != nil || len(entries) != 1 {
			t.Fatalf("List(t1) = %+v, %v", entries, err)
		}
		e := entries[0]
		if e.Route != "POST /app-api/echo" || e.Method != "POST" || e.Status != 200 || e.BytesOut == 0 || e.Duration <= 0 {
			t.Errorf("metadata = %+v", e)
		}
		want, _ := f.ring.Pseudonym(ctx, "t1", account)
		if e.UserPseudonym != want {
			t.Errorf("user = %q, want the tenant pseudonym %q of the accountId", e.UserPseudonym, want)
		}
		others, _ := f.store.List(ctx, "", time.Time{}, 10)
		if len(others) != 1 || others[0].Route != "GET /app-api/bad" || others[0].Status != 400 || others[0].ErrorCode != "invalid" {
			t.Fatalf("error entry = %+v (health checks are not logged)", others)
		}

		// No grant, a grant for another entry, a grant for another
		// permission: nothing opens.
		var none *staff.Grant
		if _, _, err := f.store.DecryptRequest(ctx, none, e.ID, 60); !errors.Is(err, reqlog.ErrNoGrant) {
			t.Errorf("no grant: %v", err)
		}
		other := stafftest.Grant(t, f.staff, f.sue, staff.DecryptRequestLog, "t1", others[0].ID)
		if _, _, err := f.store.DecryptRequest(ctx, other, e.ID, 60); !errors.Is(err, reqlog.ErrNoGrant) {
			t.Errorf("grant for another entry: %v", err)
		}
		_, req, err := f.decrypt(t, f.store, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := f.trail.List(ctx, audit.Filter{Limit: 1})
		tp, _ := f.trail.TenantPseudonym(ctx, "t1")
		if len(rows) != 1 || rows[0].Object != e.ID || rows[0].Actor != "sue" || rows[0].Role != "support" || rows[0].Action != "reqlog.decrypt" ||
			rows[0].Reason == "" || rows[0].Ticket == "" || rows[0].TenantPseudonym != tp {
			t.Errorf("audit = %+v", rows)
		}
		// The error message is sealed with the request, and scrubbed.
		_, sealed, err := f.decrypt(t, f.store, others[0].ID)
		if err != nil || strings.Contains(sealed.Error, email) || !strings.Contains(sealed.Error, "unknown user") {
			t.Errorf("sealed error = %q, %v", sealed.Error, err)
		}
		dump := fmt.Sprintf("%+v", req)
		for _, bad := range []string{jwt, pat, skip, "s3cr3t-shared", email, "Authorization", "Cookie", "session="} {
			if strings.Contains(dump, bad) {
				t.Errorf("sealed request holds %q: %s", bad, dump)
			}
		}
		for _, keep := range []string{"/app-api/echo", "$top=5", "%24skiptoken=[redacted]", "jwt=[redacted]", `"clientKey":"ck"`, "PowerBI/2.0", "OData-Version"} {
			if !strings.Contains(dump, keep) {
				t.Errorf("sealed request lost %q: %s", keep, dump)
			}
		}
		if req.BodyBytes != int64(len(body)) || req.BodyTruncated {
			t.Errorf("body bytes %d truncated %v", req.BodyBytes, req.BodyTruncated)
		}
	})
}

// A sealed request opens only for its own row and day.
func TestContractSealedRequestIsBoundToItsEntry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, reqlog.Options{})
		ctx := context.Background()
		f.do(t, "GET", "/odata/a/Issues?n=1", nil, nil)
		f.do(t, "GET", "/odata/a/Issues?n=2", nil, nil)
		f.flush(t)
		es, _ := f.store.List(ctx, "t1", time.Time{}, 10)
		if len(es) != 2 {
			t.Fatalf("entries = %d", len(es))
		}
		// Move the first entry's ciphertext onto the second row.
		if _, err := db.SQL.Exec(`UPDATE request_log SET request = (SELECT request FROM request_log WHERE id = $1) WHERE id = $2`, es[0].ID, es[1].ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.decrypt(t, f.store, es[1].ID); !errors.Is(err, keys.ErrDecrypt) {
			t.Errorf("swapped ciphertext: %v, want ErrDecrypt", err)
		}
	})
}

func TestRequestBodyReachesHandlerUnchangedAndIsCapped(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, reqlog.Options{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000/16*10) // 2 MB, streamed
	res := f.do(t, "POST", "/app-api/echo", bytes.NewReader(big), map[string]string{"Content-Type": "text/plain"})
	b, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(b), fmt.Sprintf(`"read":%d`, len(big))) {
		t.Fatalf("handler read a different body: %s", b)
	}
	f.flush(t)
	es, _ := f.store.List(context.Background(), "t1", time.Time{}, 1)
	_, req, err := f.decrypt(t, f.store, es[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !req.BodyTruncated || len(req.Body) != reqlog.BodyCap || req.BodyBytes != int64(len(big)) || req.Body != string(big[:reqlog.BodyCap]) {
		t.Errorf("stored body: %d bytes, truncated %v, read %d", len(req.Body), req.BodyTruncated, req.BodyBytes)
	}
}

func counter(t *testing.T, name, reason string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestLoggingFailureNeverFailsTheRequest(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, reqlog.Options{QueueSize: 1})
	lost := func() float64 {
		var n float64
		for _, r := range []string{"write_error", "queue_full", "closed"} {
			n += counter(t, "ferry_reqlog_dropped_total", r)
		}
		return n
	}
	before := lost()
	db.SQL.Close() // the database is gone: disk full, server down, …
	for i := range 20 {
		res := f.do(t, "GET", fmt.Sprintf("/odata/a/Issues?i=%d", i), nil, nil)
		if res.StatusCode != 200 {
			t.Fatalf("request %d failed with %d while logging was failing", i, res.StatusCode)
		}
	}
	f.log.Close(context.Background())
	if after := lost(); after-before != 20 {
		t.Errorf("dropped counter rose by %v, want 20", after-before)
	}
	if !strings.Contains(f.logs.String(), "request log write failed") {
		t.Errorf("the failure was not logged: %s", f.logs.String())
	}
}

// TestAFloodLosesNoEntry: far more requests at once than the queue holds
// slow down to the writer's pace instead of losing entries: every request
// answered is in the log.
func TestAFloodLosesNoEntry(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, reqlog.Options{QueueSize: 2, BatchSize: 3})
	before := reqlog.Lost()
	const n = 400
	var wg sync.WaitGroup
	var answered atomic.Int32
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/40; i++ {
				if res := f.do(t, "GET", "/odata/flood/Issues", nil, nil); res.StatusCode == 200 {
					answered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	f.flush(t)
	var logged int
	if err := db.SQL.QueryRow(`SELECT count(*) FROM request_log WHERE route = 'GET /odata/{source}/Issues'`).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	if answered.Load() != n || logged != n || reqlog.Lost() != before {
		t.Fatalf("%d answered, %d logged, %v lost", answered.Load(), logged, reqlog.Lost()-before)
	}
}

func TestLogsCarryNoSecretsOrPersonalData(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, reqlog.Options{})
	hdr := map[string]string{"Authorization": "JWT " + jwt, "Content-Type": "application/json", "X-Test-User": account}
	f.do(t, "POST", "/errors/api/7/envelope/?sentry_key="+pat, strings.NewReader(`{"user":"`+email+`"}`), hdr)
	f.do(t, "GET", "/app-api/bad?jwt="+jwt, nil, hdr)
	f.do(t, "GET", "/odata/a/Issues?$skiptoken="+skip, nil, hdr)
	f.flush(t)
	db.SQL.Close()
	f.do(t, "GET", "/odata/a/Issues?token="+pat+"&u="+email, nil, hdr) // the writer fails and logs
	f.log.Close(context.Background())
	out := f.logs.String()
	if !strings.Contains(out, "request failed") || !strings.Contains(out, "request log write failed") {
		t.Fatalf("expected failure logs, got:\n%s", out)
	}
	for _, bad := range []string{jwt, pat, email, account, skip, responseCanary} {
		if strings.Contains(out, bad) {
			t.Errorf("log output contains %q:\n%s", bad, out)
		}
	}
}

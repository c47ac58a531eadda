package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/cli"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startServe runs `ferry serve` in-process on a free port and returns its URL.
func startServe(t *testing.T, env map[string]string) (string, *cli.LogBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &cli.LogBuffer{}
	done := make(chan error, 1)
	env["FERRY_ADDR"] = "127.0.0.1:0"
	if _, ok := env["FERRY_METRICS_ADDR"]; !ok {
		env["FERRY_METRICS_ADDR"] = "127.0.0.1:0"
	}
	if env["FERRY_CONSOLE_ADDR"] == "" {
		env["FERRY_CONSOLE_ADDR"] = "127.0.0.1:0"
	}
	env["FERRY_LOG_FORMAT"] = "json"
	go func() {
		done <- cli.Run(ctx, []string{"ferry", "serve"}, envFunc(env), nil, io.Discard, io.MultiWriter(pw, logs))
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var rec struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ferry listening" {
			go io.Copy(io.Discard, pr)
			return rec.URL, logs
		}
	}
	t.Fatalf("serve exited before listening: %s", logs)
	return "", nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	for i := 0; i < 50; i++ {
		resp, err = http.Get(url)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricsURL is where the server started by startServe serves /metrics, from
// its "ferry listening" log line.
func metricsURL(t *testing.T, logs *cli.LogBuffer) string {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct{ Msg, Metrics string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "ferry listening" {
			return rec.Metrics
		}
	}
	t.Fatalf("no metrics address in the logs:\n%s", logs)
	return ""
}

func checkServing(t *testing.T, base string, logs *cli.LogBuffer) {
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+p); code != 200 {
			t.Fatalf("%s = %d %s", p, code, body)
		}
	}
	// Metrics are served on their own loopback listener, never the public one.
	if code, body := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("public listener answers /metrics: %d %.200s", code, body)
	}
	murl := metricsURL(t, logs)
	if !strings.HasPrefix(murl, "http://127.0.0.1:") || strings.HasPrefix(murl, base) {
		t.Fatalf("metrics at %q, want their own loopback listener (public %s)", murl, base)
	}
	_, metrics := get(t, murl)
	if !strings.Contains(metrics, `ferry_http_requests_total{code="200",method="GET",route="GET /healthz"}`) {
		t.Fatalf("/metrics lacks the request counter by route pattern:\n%s", metrics)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("missing security header %s", h)
		}
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", resp.Header.Get("Referrer-Policy"))
	}
}

func TestServeWithNoConfigurationUsesSQLiteAndAPrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	base, logs := startServe(t, map[string]string{})
	checkServing(t, base, logs)
	st, err := os.Stat(filepath.Join(dir, "ferry-data", "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o", st.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "ferry-data", "ferry.db")); err != nil {
		t.Fatal(err)
	}
}

func TestServeOnPostgres(t *testing.T) {
	url := storetest.PostgresURL(t) // a database of its own: never one another run left keys in
	base, logs := startServe(t, map[string]string{"FERRY_DATABASE_URL": url, "FERRY_DATA_DIR": t.TempDir()})
	checkServing(t, base, logs)
	// Every connection to PostgreSQL went through the egress gate.
	_, metrics := get(t, metricsURL(t, logs))
	var dials float64
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, `ferry_egress_requests_total{category="database",outcome="allowed"} `); ok {
			dials, _ = strconv.ParseFloat(v, 64)
		}
	}
	if dials < 1 {
		t.Fatalf("no PostgreSQL connection counted by the egress gate:\n%s", metrics)
	}
}

func TestBadConfigurationExitsTwoWithOneLineAndWritesNothing(t *testing.T) {
	worldReadable := t.TempDir()
	if err := os.WriteFile(filepath.Join(worldReadable, "kek.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(worldReadable, "kek.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := t.TempDir()
	if err := os.Mkdir(filepath.Join(unreadable, "kek.json"), 0o700); err != nil { // a directory cannot be read as a key file
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown database scheme", map[string]string{"FERRY_DATABASE_URL": "mysql://x/y"}, nil, "FERRY_DATABASE_URL: unknown database scheme"},
		{"malformed base URL", map[string]string{"FERRY_BASE_URL": "::not a url"}, nil, "FERRY_BASE_URL"},
		{"bad port", map[string]string{"FERRY_ADDR": "127.0.0.1:99999"}, nil, "FERRY_ADDR: port"},
		{"bad port flag", nil, []string{"--addr", "localhost:http-alt"}, `FERRY_ADDR: port "http-alt"`},
		{"world-readable key file", map[string]string{"FERRY_DATA_DIR": worldReadable}, nil, "readable by group or others"},
		{"unreadable key file", map[string]string{"FERRY_DATA_DIR": unreadable}, nil, "key file"},
		{"request log over 60 days", map[string]string{"FERRY_REQUEST_LOG_DAYS": "90"}, nil, "FERRY_REQUEST_LOG_DAYS: 90 is out of range"},
		{"Connect script not http(s)", map[string]string{"FERRY_CONNECT_JS_URL": "javascript:alert(1)"}, nil, "FERRY_CONNECT_JS_URL"},
		{"bad KMS URI", map[string]string{"FERRY_KEK": "aws-kms://nope"}, nil, "FERRY_KEK"},
		{"database at the metadata service", map[string]string{"FERRY_DATABASE_URL": "postgres://u@169.254.169.254:5432/db"}, nil, "FERRY_DATABASE_URL: 169.254.169.254 is a cloud metadata service"},
		{"database outside the region", map[string]string{"FERRY_DATABASE_URL": "postgres://u@db.x1.eu-central-1.rds.amazonaws.com/db"}, nil, "is in eu-central-1, but FERRY_REGION is us-west-2"},
		{"metrics address", map[string]string{"FERRY_METRICS_ADDR": "9464"}, nil, "FERRY_METRICS_ADDR"},
		{"KMS endpoint without a KMS key", map[string]string{"FERRY_KMS_ENDPOINT": "https://kms.us-west-2.amazonaws.com"}, nil, "FERRY_KMS_ENDPOINT"},
		{"unknown flag", nil, []string{"--colour"}, "flags:"},
		{"console on a public address over plain HTTP", map[string]string{"FERRY_CONSOLE_ADDR": "0.0.0.0:8081"}, nil, "FERRY_CONSOLE_ADDR: \"0.0.0.0:8081\" is not a loopback address"},
		{"console address without port", map[string]string{"FERRY_CONSOLE_ADDR": "localhost"}, nil, "FERRY_CONSOLE_ADDR"},
		{"SSO issuer without client id", map[string]string{"FERRY_CONSOLE_OIDC_ISSUER": "https://login.example.com"}, nil, "FERRY_CONSOLE_OIDC_ISSUER"},
		{"SSO issuer over plain HTTP", map[string]string{"FERRY_CONSOLE_OIDC_ISSUER": "http://login.example.com", "FERRY_CONSOLE_OIDC_CLIENT_ID": "ferry"}, nil, "must be https"},
		{"console URL not http(s)", map[string]string{"FERRY_CONSOLE_URL": "ftp://console"}, nil, "FERRY_CONSOLE_URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wd := t.TempDir()
			t.Chdir(wd)
			if c.env == nil {
				c.env = map[string]string{}
			}
			var out, errb bytes.Buffer
			err := cli.Run(context.Background(), append([]string{"ferry", "serve"}, c.args...), envFunc(c.env), nil, &out, &errb)
			if err == nil {
				t.Fatal("serve accepted bad configuration")
			}
			if code := cli.ExitCode(err); code != 2 {
				t.Fatalf("exit code %d for %v", code, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) {
				t.Fatalf("error %q: want one line containing %q", msg, c.want)
			}
			if entries, _ := os.ReadDir(wd); len(entries) != 0 {
				t.Fatalf("bad configuration wrote %v", entries)
			}
		})
	}
	// Nothing was written into the pre-existing data directories either.
	if entries, _ := os.ReadDir(worldReadable); len(entries) != 1 {
		t.Fatalf("world-readable case wrote files: %v", entries)
	}
}

func TestPrintConfigRedactsSecrets(t *testing.T) {
	var out bytes.Buffer
	env := map[string]string{"FERRY_DATABASE_URL": "postgres://ferry:hunter2@db.internal:5432/ferry?sslmode=require", "FERRY_SENTRY_UPSTREAM_DSN": "https://abc123@o1.ingest.sentry.io/1"}
	if err := cli.Run(context.Background(), []string{"ferry", "serve", "--print-config"}, envFunc(env), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, secret := range []string{"hunter2", "abc123"} {
		if strings.Contains(s, secret) {
			t.Fatalf("--print-config shows %q:\n%s", secret, s)
		}
	}
	if !strings.Contains(s, "FERRY_DATABASE_URL=postgres://[redacted]@db.internal:5432/ferry") || !strings.Contains(s, "FERRY_ADDR=127.0.0.1:8080") {
		t.Fatalf("unexpected config dump:\n%s", s)
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(f, []byte("https://key@sentry.example/2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := cli.Run(context.Background(), []string{"ferry", "serve", "--print-config"}, envFunc(map[string]string{"FERRY_SENTRY_UPSTREAM_DSN_FILE": f}), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "FERRY_SENTRY_UPSTREAM_DSN=[redacted]") {
		t.Fatalf("secret from file not loaded:\n%s", out.String())
	}
	err := cli.Run(context.Background(), []string{"ferry", "serve"}, envFunc(map[string]string{"FERRY_SENTRY_UPSTREAM_DSN_FILE": "/nonexistent/x"}), nil, io.Discard, io.Discard)
	if cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), "FERRY_SENTRY_UPSTREAM_DSN_FILE") {
		t.Fatalf("missing secret file: %v", err)
	}
}

// The old variable is refused, naming its replacement: silently ignoring a
// DSN someone set would drop their error events on the floor.
func TestRenamedSentryDSNFailsStartUp(t *testing.T) {
	for _, env := range []map[string]string{
		{"FERRY_SENTRY_DSN": "https://abc123@o1.ingest.sentry.io/1"},
		{"FERRY_SENTRY_DSN_FILE": "/nonexistent/x"},
	} {
		err := cli.Run(context.Background(), []string{"ferry", "serve", "--print-config"}, envFunc(env), nil, io.Discard, io.Discard)
		if cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), "FERRY_SENTRY_UPSTREAM_DSN") || strings.Contains(err.Error(), "abc123") {
			t.Errorf("%v: err = %v, want exit 2 naming FERRY_SENTRY_UPSTREAM_DSN", env, err)
		}
	}
	err := cli.Run(context.Background(), []string{"ferry", "serve", "--print-config"}, envFunc(map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": "https://o1.ingest.sentry.io/1"}), nil, io.Discard, io.Discard)
	if cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), "public key") {
		t.Errorf("DSN without a key: %v", err)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := cli.Run(context.Background(), []string{"ferry", "version"}, envFunc(nil), nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "ferry ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	err := cli.Run(context.Background(), []string{"ferry", "frobnicate"}, envFunc(nil), nil, io.Discard, io.Discard)
	if cli.ExitCode(err) != 2 {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestRegionMisconfigurationFailsStartUp(t *testing.T) {
	t.Chdir(t.TempDir())
	cases := map[string]map[string]string{
		"malformed region": {"FERRY_REGION": "oregon"},
		"KMS key outside the region": {"FERRY_REGION": "us-west-2",
			"FERRY_KEK": "aws-kms://arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		"S3 bucket outside the region": {"FERRY_S3_BUCKET": "backups", "FERRY_S3_REGION": "eu-central-1"},
	}
	for name, env := range cases {
		err := cli.Run(context.Background(), []string{"ferry", "serve"}, envFunc(env), nil, io.Discard, io.Discard)
		if cli.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v (exit %d), want one line and exit 2", name, err, cli.ExitCode(err))
			continue
		}
		if entries, _ := os.ReadDir("."); len(entries) != 0 {
			t.Fatalf("%s: wrote %v", name, entries)
		}
		t.Logf("%s: %v", name, err)
	}
}

// migrated runs `ferry migrate` in a fresh data directory and returns it.
func migrated(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := cli.Run(context.Background(), []string{"ferry", "migrate"}, envFunc(map[string]string{"FERRY_DATA_DIR": dir}), nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return dir
}

// A database that a newer Ferry migrated stops start-up with exit 2 and one
// line, and this older binary writes nothing to it.
func TestServeRefusesADatabaseFromANewerVersion(t *testing.T) {
	dir := migrated(t)
	db, err := store.Open(context.Background(), store.Options{SQLitePath: filepath.Join(dir, "ferry.db")})
	if err != nil {
		t.Fatal(err)
	}
	latest, err := db.LatestMigration()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, latest+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := snapshotDir(t, dir)
	err = cli.Run(context.Background(), []string{"ferry", "serve"}, envFunc(map[string]string{"FERRY_DATA_DIR": dir, "FERRY_ADDR": "127.0.0.1:0"}), nil, io.Discard, io.Discard)
	if cli.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "newer than this ferry") {
		t.Fatalf("serve on a newer database: %v (exit %d), want exit 2 and one line", err, cli.ExitCode(err))
	}
	if after := snapshotDir(t, dir); after != before {
		t.Fatalf("the refused start-up changed the data directory:\nbefore %s\nafter  %s", before, after)
	}
}

// A damaged ferry.db stops start-up with a clear one-line error: it is never
// served as ready.
func TestServeRefusesACorruptDatabase(t *testing.T) {
	dir := migrated(t)
	path := filepath.Join(dir, "ferry.db")
	db, err := store.Open(context.Background(), store.Options{SQLitePath: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		if _, err := db.SQL.Exec(`INSERT INTO log_day_keys (day, keyset, created_at) VALUES ($1, randomblob(300), CURRENT_TIMESTAMP)`, strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.SQL.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for off := (st.Size() / 2) &^ 4095; off < st.Size(); off += 3 * 4096 {
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xEE}, 2048), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	err = cli.Run(context.Background(), []string{"ferry", "serve"}, envFunc(map[string]string{"FERRY_DATA_DIR": dir, "FERRY_ADDR": "127.0.0.1:0"}), nil, io.Discard, io.Discard)
	if err == nil || cli.ExitCode(err) == 0 || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("serve on a corrupt database: %v, want one line saying it is damaged", err)
	}
	t.Log(err)
}

// snapshotDir describes every file under dir (name, size, content hash).
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s:%d:%x ", rel, len(data), sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TLS files that are missing or not a certificate and its key stop start-up
// before anything is written: no data directory, no database, no key file.
func TestServeChecksTLSFilesBeforeWritingAnything(t *testing.T) {
	files := t.TempDir()
	garbage := filepath.Join(files, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certA, keyA := selfSigned(t, files, "a")
	_, keyB := selfSigned(t, files, "b")
	cases := []struct {
		name, cert, key, want string
	}{
		{"missing certificate", filepath.Join(files, "nope.crt"), keyA, "FERRY_TLS_CERT"},
		{"missing key", certA, filepath.Join(files, "nope.key"), "FERRY_TLS_KEY"},
		{"certificate is not PEM", garbage, keyA, "FERRY_TLS_CERT"},
		{"key of another certificate", certA, keyB, "FERRY_TLS_KEY"},
		{"directory as certificate", files, keyA, "FERRY_TLS_CERT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wd := t.TempDir()
			t.Chdir(wd)
			env := map[string]string{"FERRY_TLS_CERT": c.cert, "FERRY_TLS_KEY": c.key, "FERRY_ADDR": "127.0.0.1:0"}
			err := cli.Run(context.Background(), []string{"ferry", "serve"}, envFunc(env), nil, io.Discard, io.Discard)
			if cli.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), c.want+":") {
				t.Fatalf("err = %v (exit %d), want one line starting %s:", err, cli.ExitCode(err), c.want)
			}
			if entries, _ := os.ReadDir(wd); len(entries) != 0 {
				t.Fatalf("bad TLS files, yet start-up wrote %v", entries)
			}
		})
	}
}

// selfSigned writes a fresh self-signed certificate and its key.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// With good TLS files Ferry serves HTTPS with exactly that certificate.
func TestServeOverTLSUsesTheConfiguredCertificate(t *testing.T) {
	files := t.TempDir()
	cert, key := selfSigned(t, files, "good")
	base, _ := startServe(t, map[string]string{"FERRY_TLS_CERT": cert, "FERRY_TLS_KEY": key, "FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data")})
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("listening on %s, want https", base)
	}
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("GET /healthz over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
}

// A database with keys next to a missing or foreign key file stops start-up
// with exit 2 and one line naming FERRY_DATA_DIR; no key file is made, the
// database is not changed, and the right key file still opens it afterwards.
func TestServeRefusesAMissingOrForeignKeyFile(t *testing.T) {
	dir := migrated(t)
	path := filepath.Join(dir, "kek.json")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), store.Options{SQLitePath: filepath.Join(dir, "ferry.db")})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.Open(context.Background(), db, keys.Options{KeyFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.EnsureTenant(context.Background(), "t1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	foreign := filepath.Join(t.TempDir(), "kek.json")
	if _, err := keys.CreateKeyFile(foreign); err != nil {
		t.Fatal(err)
	}
	foreignKey, err := os.ReadFile(foreign)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FERRY_DATA_DIR": dir, "FERRY_ADDR": "127.0.0.1:0", "FERRY_METRICS_ADDR": "off"}
	for _, c := range []struct {
		name  string
		key   []byte // nil: no key file
		wants string
	}{{"missing", nil, "is missing"}, {"foreign", foreignKey, "another installation"}} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if c.key != nil {
				if err := os.WriteFile(path, c.key, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshotDir(t, dir)
			for _, cmd := range [][]string{{"migrate"}, {"keys", "rotate-kek"}, {"serve"}} {
				err := cli.Run(context.Background(), append([]string{"ferry"}, cmd...), envFunc(env), nil, io.Discard, io.Discard)
				if cli.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "FERRY_DATA_DIR: ") || !strings.Contains(err.Error(), c.wants) {
					t.Fatalf("%s with a %s key file: %v (exit %d), want exit 2 and one line saying it %s", cmd, c.name, err, cli.ExitCode(err), c.wants)
				}
			}
			if after := snapshotDir(t, dir); after != before {
				t.Fatalf("refused start-up changed the data directory:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runCLI(env, "migrate"); err != nil {
		t.Fatalf("with its own key file back: %v %s", err, out)
	}
}

// /readyz says not ready when the server cannot open a KEK version the
// database records (rotation ran elsewhere with another copy of the key
// file), and ready again once its key file holds that version.
func TestReadyzReflectsWhetherTheServerCanUnwrap(t *testing.T) {
	url := storetest.PostgresURL(t)
	dirA := t.TempDir()
	base, _ := startServe(t, map[string]string{"FERRY_DATABASE_URL": url, "FERRY_DATA_DIR": dirA})
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz before rotation: %d %s", code, body)
	}
	dirB := t.TempDir()
	keyA, err := os.ReadFile(filepath.Join(dirA, "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "kek.json"), keyA, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(map[string]string{"FERRY_DATABASE_URL": url, "FERRY_DATA_DIR": dirB}, "keys", "rotate-kek"); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "version 2") {
		t.Fatalf("/readyz with version 2 only in another copy of the key file: %d %s", code, body)
	}
	keyB, err := os.ReadFile(filepath.Join(dirB, "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirA, "kek.json"), keyB, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz once the key file holds version 2: %d %s", code, body)
	}
}

// A data directory whose name holds URI syntax keeps the database and the
// key file inside it.
func TestDataDirWithURICharacters(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data?mode=memory#x%41")
	if out, _, err := runCLI(map[string]string{"FERRY_DATA_DIR": dir}, "migrate"); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	for _, name := range []string{"ferry.db", "kek.json"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s in the data directory: %v", name, err)
		}
	}
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 1 {
		t.Fatalf("files beside the data directory: %v %v", entries, err)
	}
}

// keys subcommands explain their usage with exit 2.
func TestKeysUsageErrors(t *testing.T) {
	env := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data")}
	for _, args := range [][]string{{"keys"}, {"keys", "shred-everything"}, {"keys", "retire-kek"}, {"keys", "retire-kek", "one"}, {"keys", "retire-kek", "0"}} {
		_, _, err := runCLI(env, args...)
		if cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), "usage") && !strings.Contains(err.Error(), "not a KEK version") {
			t.Errorf("%v: %v (exit %d)", args, err, cli.ExitCode(err))
		}
	}
	if _, _, err := runCLI(env, "keys", "retire-kek", "1"); err == nil || !strings.Contains(err.Error(), "primary") {
		t.Errorf("retiring the only (primary) version: %v", err)
	}
	out, _, err := runCLI(env, "keys", "list")
	if err != nil || !strings.HasPrefix(out, "version 1  primary") {
		t.Errorf("keys list: %q %v", out, err)
	}
}

package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry/internal/egress"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// localKMS is a running local-kms (github.com/nsmithuk/local-kms): an AWS
// KMS-compatible server, so the KMS path is tested through the real AWS SDK
// v2 client, tink-go-awskms/v3 and the egress gate, not just its URI.
type localKMS struct {
	endpoint string
	keys     []string // aws-kms:// URIs of the seeded keys
}

const kmsAccount = "111122223333"

// startLocalKMS runs local-kms on a free loopback port with three seeded AES
// keys. It skips, saying how to enable it, when the binary is not installed
// (bash .ci/run installs it), unless FERRY_REQUIRE_INTEROP=1.
func startLocalKMS(t *testing.T) *localKMS {
	t.Helper()
	bin := os.Getenv("FERRY_LOCAL_KMS")
	if bin == "" {
		bin, _ = exec.LookPath("local-kms")
	}
	if bin == "" {
		msg := "local-kms not found: go install github.com/nsmithuk/local-kms@v0.0.0-20260228092603-2a5e92d09ab6 and put it on PATH or in FERRY_LOCAL_KMS (bash .ci/run does)"
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	ids := []string{"bc436485-5092-42b8-92a3-0aa8b93536dc", "0f4c7d8e-1a2b-4c3d-9e8f-0123456789ab", "7e6d5c4b-3a29-4817-8695-a4b3c2d1e0f9"}
	var seed strings.Builder
	seed.WriteString("Keys:\n  Symmetric:\n    Aes:\n")
	for i, id := range ids {
		fmt.Fprintf(&seed, "      - Metadata:\n          KeyId: %s\n        BackingKeys:\n          - %064x\n", id, i+1)
	}
	must(t, os.WriteFile(filepath.Join(dir, "seed.yaml"), []byte(seed.String()), 0o600))
	// The port is found free and then handed to local-kms, so another test
	// may take it in between: local-kms then exits at once, and it is
	// started again on another port.
	var addr string
	for attempt := 1; addr == ""; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "KMS_REGION=us-west-2", "KMS_ACCOUNT_ID="+kmsAccount,
			"KMS_DATA_PATH="+filepath.Join(dir, "data"), "KMS_SEED_PATH="+filepath.Join(dir, "seed.yaml"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		must(t, cmd.Start())
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		try := fmt.Sprintf("127.0.0.1:%d", port)
		for deadline := time.Now().Add(30 * time.Second); addr == ""; {
			if c, err := net.DialTimeout("tcp", try, time.Second); err == nil {
				c.Close()
				addr = try
				break
			}
			select {
			case <-exited:
				if attempt == 3 {
					t.Fatalf("local-kms exited three times before listening; last output:\n%s", out.String())
				}
				deadline = time.Time{}
			case <-time.After(20 * time.Millisecond):
			}
			if deadline.IsZero() {
				break // started again on another port
			}
			if time.Now().After(deadline) {
				t.Fatalf("local-kms did not start listening on %s", try)
			}
		}
	}
	k := &localKMS{endpoint: "http://" + addr}
	for _, id := range ids {
		k.keys = append(k.keys, "aws-kms://arn:aws:kms:us-west-2:"+kmsAccount+":key/"+id)
	}
	// Static credentials for the SDK's default chain; never the metadata service.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALKMS")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-kms-accepts-any-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	return k
}

// client is the KMS client Ferry builds: AWS SDK v2 through the egress gate.
func (k *localKMS) client(t *testing.T) keys.KMS {
	t.Helper()
	g, err := egress.New(egress.Config{Region: "us-west-2", KMSKeyURI: k.keys[0], KMSEndpoint: k.endpoint, AllowLoopback: true})
	must(t, err)
	return &keys.AWSKMS{HTTP: g.Client(egress.KMS), Endpoint: k.endpoint}
}

func kmsCalls(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "ferry_egress_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["category"] == "kms" && labels["outcome"] == "allowed" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A KMS KEK end to end against a KMS-compatible server: version 1 from
// FERRY_KEK, keys sealed and opened through KMS (every call through the
// egress gate), rotation to another KMS key, retirement, and the start-up
// checks: a KMS key that is not this database's is refused naming FERRY_KEK.
func TestContractKMSKEKAgainstLocalKMS(t *testing.T) {
	kms := startLocalKMS(t)
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		client := kms.client(t)
		open := func(uri string) (*keys.Ring, error) {
			return keys.Open(ctx, db, keys.Options{KeyFile: filepath.Join(t.TempDir(), "kek.json"), KMSKey: uri, KMS: client})
		}
		before := kmsCalls(t)
		server, err := open(kms.keys[0])
		must(t, err)
		all := []sealed{seal(t, server, "t1", "one"), seal(t, server, "t2", "two")}
		must(t, server.Ready(ctx))
		if kmsCalls(t) <= before {
			t.Fatal("no KMS call went through the egress gate")
		}
		vs := versionsOf(t, server)
		if len(vs) != 1 || vs[1].KeyRef != kms.keys[0] || !vs[1].Primary {
			t.Fatalf("versions: %+v", vs)
		}
		// The KMS key check value is a KMS ciphertext, never the key.
		var check []byte
		must(t, db.SQL.QueryRowContext(ctx, `SELECT check_value FROM kek_versions WHERE version = 1`).Scan(&check))
		if len(check) < 40 {
			t.Fatalf("check value of %d bytes", len(check))
		}

		var wrong *keys.WrongKEKError
		if _, err := open(kms.keys[2]); !errors.As(err, &wrong) || wrong.Setting != "FERRY_KEK" || !strings.Contains(wrong.Reason, "rotate-kek --to") {
			t.Fatalf("a KMS key that is not this database's: %v", err)
		}
		if _, err := keys.Open(ctx, db, keys.Options{KeyFile: filepath.Join(t.TempDir(), "kek.json")}); !errors.As(err, &wrong) || wrong.Setting != "FERRY_KEK" {
			t.Fatalf("no FERRY_KEK for a database under KMS: %v", err)
		}

		admin, err := open(kms.keys[0])
		must(t, err)
		res, err := admin.Rotate(ctx, kms.keys[1])
		must(t, err)
		if res.Version != 2 || res.TenantKeysets != 2 {
			t.Fatalf("rotation to the second KMS key: %+v", res)
		}
		opens(t, "the server after rotation", server, all)
		all = append(all, seal(t, server, "t3", "three"))
		_, err = admin.Retire(ctx, 1)
		must(t, err)
		if _, err := open(kms.keys[0]); !errors.As(err, &wrong) || wrong.Setting != "FERRY_KEK" {
			t.Fatalf("FERRY_KEK naming the retired key: %v", err)
		}
		fresh, err := open(kms.keys[1])
		must(t, err)
		must(t, fresh.Ready(ctx))
		opens(t, "a process with FERRY_KEK set to the new key", fresh, all)
	})
}

// Moving from the local key file to KMS is a rotation: afterwards the local
// version retires and the key file, no longer needed, goes with it.
func TestContractMoveFromTheKeyFileToKMS(t *testing.T) {
	kms := startLocalKMS(t)
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, path := newRing(t, db)
		client := kms.client(t)
		// Servers are configured with the KMS key first; the keys are still
		// in the key file, which they keep using.
		local, err := keys.Open(ctx, db, keys.Options{KeyFile: path, KMSKey: kms.keys[0], KMS: client})
		must(t, err)
		all := []sealed{seal(t, local, "t1", "one")}
		if vs := versionsOf(t, local); len(vs) != 1 || !strings.HasPrefix(vs[1].KeyRef, "local:") {
			t.Fatalf("before the move: %+v", vs)
		}
		admin, err := keys.Open(ctx, db, keys.Options{KeyFile: path, KMSKey: kms.keys[0], KMS: client})
		must(t, err)
		if _, err := admin.Rotate(ctx, kms.keys[0]); err != nil {
			t.Fatal(err)
		}
		opens(t, "the local-key server after moving to KMS", local, all)
		if _, err := admin.Retire(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("key file still there after its last version retired: %v", err)
		}
		after, err := keys.Open(ctx, db, keys.Options{KeyFile: path, KMSKey: kms.keys[0], KMS: client})
		must(t, err)
		opens(t, "a process on KMS alone", after, all)
	})
}

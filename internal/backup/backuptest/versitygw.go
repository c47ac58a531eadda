// Package backuptest starts what the backup tests, and the tests of other
// areas that keep objects in the backup target, run against.
package backuptest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ferry/internal/egress"
)

// VersityGWVersion is the S3-compatible server the S3 tests run against;
// .ci/run installs it (go install …/versitygw@VersityGWVersion) and caches it.
const VersityGWVersion = "v1.8.0"

// VersityGW starts a real S3-compatible server (versitygw, posix backend)
// on a free loopback port, with one bucket and one access key, and returns
// its endpoint. Without versitygw the test skips, saying how to install it
// (with FERRY_REQUIRE_INTEROP=1 it fails).
func VersityGW(t testing.TB, region, bucket, access, secret string) string {
	t.Helper()
	bin := os.Getenv("FERRY_VERSITYGW")
	if bin == "" {
		if p, err := exec.LookPath("versitygw"); err == nil {
			bin = p
		} else if home, err := os.UserHomeDir(); err == nil {
			bin = filepath.Join(home, ".cache", "ferry-ci", "versitygw-"+VersityGWVersion, "versitygw")
		}
	}
	if _, err := os.Stat(bin); err != nil {
		msg := "S3 tests skipped: versitygw not found; run: GOBIN=$HOME/.cache/ferry-ci/versitygw-" + VersityGWVersion +
			" go install github.com/versity/versitygw/cmd/versitygw@" + VersityGWVersion + " (or set FERRY_VERSITYGW)"
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	root, side := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(root, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--access", access, "--secret", secret, "--region", region,
		"--port", addr, "--quiet", "posix", "--sidecar", side, root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	// Waiting for it to listen goes through the egress gate like any
	// connection to the S3 endpoint.
	gate, err := egress.New(egress.Config{Region: region, S3Endpoint: "http://" + addr, S3Bucket: bucket, S3Region: region, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c, err := gate.DialContext(dctx, egress.S3, "tcp", addr)
		dcancel()
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr
}

package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"ferry/internal/backup/backuptest"
	"ferry/internal/egress"
	"ferry/internal/store/storetest"
)

const (
	s3Access = "ferrytestaccess"
	s3Secret = "ferry-test-secret-0d5e9c"
	s3Bucket = "ferry-backups"
)

// versityGW starts a real S3-compatible server with the tests' bucket and key.
func versityGW(t *testing.T, region string) string {
	t.Helper()
	return backuptest.VersityGW(t, region, s3Bucket, s3Access, s3Secret)
}

// gate returns the egress gate configured for a loopback S3 endpoint.
func s3Gate(t *testing.T, endpoint, region string) *egress.Gate {
	t.Helper()
	g, err := egress.New(egress.Config{Region: region, S3Endpoint: endpoint, S3Bucket: s3Bucket, S3Region: region, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func s3Target(t *testing.T, endpoint, region, secret string, gate *egress.Gate) *S3Target {
	t.Helper()
	tg, err := NewS3Target(S3Options{Endpoint: endpoint, Bucket: s3Bucket, Region: region, AccessKeyID: s3Access,
		SecretAccessKey: secret, HTTP: gate.Client(egress.S3), PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func egressCount(t *testing.T, outcome string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_egress_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["category"] == "s3" && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// failingReader yields n bytes, then fails, as a snapshot cut short would.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("snapshot failed")
	}
	k := min(len(p), r.n)
	rand.Read(p[:k])
	r.n -= k
	return k, nil
}

// TestS3TargetAgainstVersityGW exercises the target on a real S3 server
// through the egress gate: single-request and multipart uploads round-trip,
// a failed upload leaves no object and no pending upload, Sweep aborts an
// abandoned upload, and the bucket's region is read from the server.
func TestS3TargetAgainstVersityGW(t *testing.T) {
	ctx := context.Background()
	endpoint := versityGW(t, "us-west-2")
	gate := s3Gate(t, endpoint, "us-west-2")
	tg := s3Target(t, endpoint, "us-west-2", s3Secret, gate)
	before := egressCount(t, "allowed")

	if err := tg.CheckRegion(ctx, "us-west-2"); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 5<<20 - 1, 5 << 20, 12<<20 + 7} {
		data := make([]byte, size)
		rand.Read(data)
		name := fmt.Sprintf("data/obj-%d.age", size)
		obj, err := tg.Put(ctx, name, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		if obj.Size != int64(size) {
			t.Errorf("put %d bytes: size %d", size, obj.Size)
		}
		if got := readObject(t, tg, name); !bytes.Equal(got, data) {
			t.Errorf("object of %d bytes comes back as %d different bytes", size, len(got))
		}
	}
	list, err := tg.List(ctx, "data/")
	if err != nil || len(list) != 5 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if _, err := tg.Put(ctx, "data/broken.age", &failingReader{n: 11 << 20}); err == nil {
		t.Fatal("a put whose reader failed succeeded")
	}
	if _, err := tg.Get(ctx, "data/broken.age"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed put left an object: %v", err)
	}
	raw := s3.New(s3.Options{Region: "us-west-2", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s3Access, SecretAccessKey: s3Secret}, nil
		})})
	ups, err := raw.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s3Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("failed put left %d pending uploads", len(ups.Uploads))
	}
	// A process killed mid-upload leaves a pending multipart upload: never
	// listed as an object, and swept.
	if _, err := raw.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s3Bucket), Key: aws.String("data/killed.age")}); err != nil {
		t.Fatal(err)
	}
	if l, _ := tg.List(ctx, "data/killed"); len(l) != 0 {
		t.Errorf("pending upload listed as an object: %v", l)
	}
	if n, err := tg.Sweep(ctx, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("sweep: %d, %v; want 1 aborted", n, err)
	}
	for _, o := range list {
		if err := tg.Delete(ctx, o.Name); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := tg.List(ctx, ""); len(l) != 0 {
		t.Errorf("after deleting: %v", l)
	}
	if after := egressCount(t, "allowed"); after <= before {
		t.Errorf("no S3 request went through the egress gate (%v → %v)", before, after)
	}
	// The gate refuses any other destination for the S3 category.
	other := s3Target(t, "http://127.0.0.2:9", "us-west-2", s3Secret, gate)
	if _, err := other.List(ctx, ""); !errors.Is(err, egress.ErrDestinationRefused) {
		t.Errorf("S3 call to an undeclared endpoint: %v, want refused by the gate", err)
	}
}

// TestS3BucketOutsideTheRegionIsRefused: a bucket that answers from another
// region gets no backup, whatever the configuration claims.
func TestS3BucketOutsideTheRegionIsRefused(t *testing.T) {
	ctx := context.Background()
	endpoint := versityGW(t, "eu-west-1")
	tg := s3Target(t, endpoint, "eu-west-1", s3Secret, s3Gate(t, endpoint, "eu-west-1"))
	if err := tg.CheckRegion(ctx, "us-west-2"); !errors.Is(err, ErrWrongRegion) || !strings.Contains(err.Error(), "eu-west-1") {
		t.Fatalf("CheckRegion: %v, want ErrWrongRegion naming eu-west-1", err)
	}
	f := newFixture(t, storetest.SQLite(t))
	svc := f.service(t, tg, func(o *Options) { o.Region = "us-west-2" })
	if _, err := svc.Backup(ctx); !errors.Is(err, ErrWrongRegion) {
		t.Fatalf("backup to a bucket in eu-west-1 with FERRY_REGION us-west-2: %v", err)
	}
	if l, err := tg.List(ctx, ""); err != nil || len(l) != 0 {
		t.Fatalf("refused backup wrote %v (%v)", l, err)
	}
	runs, err := svc.Runs(ctx, 5)
	if err != nil || len(runs) != 1 || runs[0].State != "failed" || !strings.Contains(runs[0].Error, "eu-west-1") {
		t.Errorf("the refusal is not recorded as a failed run: %+v, %v", runs, err)
	}
}

// TestS3BackupAndRestoreThroughTheGate runs the whole job against a real S3
// server: backup, drill, list, restore; then the same with a wrong secret,
// which fails with S3's own error, writes nothing and leaks no secret.
func TestS3BackupAndRestoreThroughTheGate(t *testing.T) {
	ctx := context.Background()
	endpoint := versityGW(t, "us-west-2")
	gate := s3Gate(t, endpoint, "us-west-2")
	tg := s3Target(t, endpoint, "us-west-2", s3Secret, gate)
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	f.populate(t, newRand(t))
	// Big enough for a multipart upload of the data object.
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE bulk (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO bulk VALUES (randomblob(1000000))`); err != nil {
			t.Fatal(err)
		}
	}
	svc := f.service(t, tg, nil)
	res, err := svc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Data.Size < 10<<20 {
		t.Fatalf("data object of %d bytes: no multipart upload exercised", res.Manifest.Data.Size)
	}
	b, ok, err := svc.NewestGood(ctx)
	if err != nil || !ok || b.ID != res.Manifest.ID {
		t.Fatalf("newest good: %+v %v %v", b, ok, err)
	}
	to := filepath.Join(t.TempDir(), "from-s3.db")
	if _, err := svc.Restore(ctx, b.ID, RestoreOptions{To: to}); err != nil {
		t.Fatal(err)
	}
	assertSameSQLite(t, db.SQL, to)

	wrong := s3Target(t, endpoint, "us-west-2", "not-the-secret-41c7", gate)
	bad := f.service(t, wrong, nil)
	_, err = bad.Backup(ctx)
	if err == nil || !errors.Is(err, ErrTarget) {
		t.Fatalf("backup with a wrong secret: %v, want a target error", err)
	}
	if !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("wrong-secret error does not say why: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), s3Secret) {
		t.Errorf("error leaks a secret: %v", err)
	}
	after, err := svc.List(ctx)
	if err != nil || len(after) != 1 || after[0].ID != res.Manifest.ID {
		t.Errorf("after the refused backup the bucket holds %+v (%v)", after, err)
	}
	if runs, err := bad.Runs(ctx, 1); err != nil || runs[0].State != "failed" || !strings.Contains(runs[0].Error, "SignatureDoesNotMatch") ||
		strings.Contains(runs[0].Error, "not-the-secret") {
		t.Errorf("wrong-secret run recorded as %+v, %v", runs, err)
	}
	if _, err := bad.List(ctx); err == nil {
		t.Error("listing with a wrong secret succeeded")
	}
	// Egress refusals are visible: a transport that is not the gate's is
	// never used (the gate's client is the only one NewS3Target accepts).
	if _, err := NewS3Target(S3Options{Bucket: s3Bucket, Region: "us-west-2", AccessKeyID: "a", SecretAccessKey: "b"}); err == nil {
		t.Error("an S3 target without the gate's client was built")
	}
}

// TestCIBuildsTheVersityGWTheTestsUse keeps .ci/run and the tests on one
// versitygw version, so CI never runs the S3 tests against another server
// than the one they were written for (or skips them for want of it).
func TestCIBuildsTheVersityGWTheTestsUse(t *testing.T) {
	b, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "VERSITYGW_VERSION="+backuptest.VersityGWVersion+"\n") {
		t.Fatalf(".ci/run does not build versitygw %s", backuptest.VersityGWVersion)
	}
}

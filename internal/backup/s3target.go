package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Options configures an S3Target.
type S3Options struct {
	// Endpoint is an S3-compatible endpoint URL (FERRY_S3_ENDPOINT); empty
	// means AWS's regional endpoint. A custom endpoint is addressed
	// path-style (endpoint/bucket/key), as S3-compatible servers expect.
	Endpoint string
	Bucket   string // FERRY_S3_BUCKET
	Region   string // FERRY_S3_REGION (signing region)

	AccessKeyID     string // FERRY_S3_ACCESS_KEY_ID
	SecretAccessKey string // FERRY_S3_SECRET_ACCESS_KEY (secret)

	// HTTP is the egress gate's S3 client: every request is checked against
	// the declared backup endpoint (promise P9).
	HTTP *http.Client

	// PartSize is the multipart part size; 0 means DefaultPartSize.
	PartSize int
}

// DefaultPartSize is the multipart upload part size. Parts are buffered in
// memory (ciphertext only); with S3's 10 000-part limit it allows objects up
// to 160 GiB.
const DefaultPartSize = 16 << 20

// S3Target keeps objects in an S3 bucket. Uploads of unknown length go up
// in parts (CreateMultipartUpload … CompleteMultipartUpload), so an object
// only exists once every part has arrived; an upload cut short is aborted,
// or, if the process died, swept later (Sweep).
type S3Target struct {
	c        *s3.Client
	bucket   string
	endpoint string
	partSize int
}

var (
	_ Target        = (*S3Target)(nil)
	_ sweeper       = (*S3Target)(nil)
	_ regionChecker = (*S3Target)(nil)
)

// NewS3Target builds the client; it makes no request.
func NewS3Target(o S3Options) (*S3Target, error) {
	switch {
	case o.Bucket == "":
		return nil, errors.New("FERRY_S3_BUCKET is empty")
	case o.Region == "":
		return nil, errors.New("FERRY_S3_REGION is empty")
	case o.AccessKeyID == "" || o.SecretAccessKey == "":
		return nil, errors.New("FERRY_S3_ACCESS_KEY_ID and FERRY_S3_SECRET_ACCESS_KEY must both be set")
	case o.HTTP == nil:
		return nil, errors.New("S3 target needs the egress gate's client")
	}
	creds := aws.Credentials{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey, Source: "ferry configuration"}
	opts := s3.Options{
		Region:      o.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:  o.HTTP,
	}
	if o.Endpoint != "" {
		opts.BaseEndpoint = aws.String(strings.TrimRight(o.Endpoint, "/"))
		opts.UsePathStyle = true
	}
	ps := o.PartSize
	if ps <= 0 {
		ps = DefaultPartSize
	}
	if ps < 5<<20 {
		return nil, errors.New("S3 part size must be at least 5 MiB")
	}
	ep := o.Endpoint
	if ep == "" {
		ep = "s3." + o.Region + ".amazonaws.com"
	}
	return &S3Target{c: s3.New(opts), bucket: o.Bucket, endpoint: ep, partSize: ps}, nil
}

func (t *S3Target) String() string { return "s3 bucket " + t.bucket + " at " + t.endpoint }

// CheckRegion asks S3 where the bucket is and refuses any region but want:
// the backup must stay where the statement says data is hosted (P8). The
// start-up check compares configuration only; this compares the bucket.
func (t *S3Target) CheckRegion(ctx context.Context, want string) error {
	out, err := t.c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: &t.bucket})
	if err != nil {
		return fmt.Errorf("%s: where is the bucket: %w", t, s3Err(err))
	}
	got := string(out.LocationConstraint)
	switch got {
	case "": // S3's legacy answer for us-east-1
		got = "us-east-1"
	case "EU":
		got = "eu-west-1"
	}
	if got != want {
		return fmt.Errorf("%w: bucket %s is in %s, but FERRY_REGION is %s; backups stay in the hosting region", ErrWrongRegion, t.bucket, got, want)
	}
	return nil
}

// ErrWrongRegion: the bucket is outside the hosting region.
var ErrWrongRegion = errors.New("backup: bucket outside the hosting region")

func (t *S3Target) Put(ctx context.Context, name string, r io.Reader) (Object, error) {
	if err := CheckName(name); err != nil {
		return Object{}, err
	}
	h := sha256.New()
	buf := make([]byte, t.partSize)
	n, err := io.ReadFull(r, buf)
	var sent int64
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF: // fits in one request
		h.Write(buf[:n])
		if _, err := t.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &t.bucket, Key: &name,
			Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n))}); err != nil {
			return Object{}, fmt.Errorf("upload %s: %w", name, s3Err(err))
		}
		sent = int64(n)
	case err != nil:
		return Object{}, fmt.Errorf("upload %s: %w", name, err)
	default:
		sent, err = t.putParts(ctx, name, buf, r, h)
		if err != nil {
			return Object{}, err
		}
	}
	head, err := t.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &t.bucket, Key: &name})
	if err != nil {
		return Object{}, fmt.Errorf("check upload %s: %w", name, s3Err(err))
	}
	if size := aws.ToInt64(head.ContentLength); size != sent {
		t.Delete(context.WithoutCancel(ctx), name)
		return Object{}, fmt.Errorf("upload %s: bucket stored %d bytes, sent %d", name, size, sent)
	}
	return Object{Name: name, Size: sent, SHA256: hex.EncodeToString(h.Sum(nil)), Modified: aws.ToTime(head.LastModified)}, nil
}

// putParts uploads buf (already full) and the rest of r as a multipart
// upload, aborting it on any error.
func (t *S3Target) putParts(ctx context.Context, name string, buf []byte, r io.Reader, h io.Writer) (int64, error) {
	up, err := t.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &t.bucket, Key: &name})
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", name, s3Err(err))
	}
	done := false
	defer func() {
		if !done {
			t.c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &t.bucket, Key: &name, UploadId: up.UploadId})
		}
	}()
	var parts []types.CompletedPart
	var sent int64
	for num, n := int32(1), len(buf); n > 0; num++ {
		if num > 10000 {
			return 0, fmt.Errorf("upload %s: more than 10000 parts of %d bytes", name, t.partSize)
		}
		h.Write(buf[:n])
		out, err := t.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &t.bucket, Key: &name, UploadId: up.UploadId,
			PartNumber: aws.Int32(num), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n))})
		if err != nil {
			return 0, fmt.Errorf("upload %s part %d: %w", name, num, s3Err(err))
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag,
			ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C, ChecksumCRC64NVME: out.ChecksumCRC64NVME,
			ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256})
		sent += int64(n)
		n, err = io.ReadFull(r, buf) // io.EOF only with n == 0, which ends the loop
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("upload %s: %w", name, err)
		}
	}
	if _, err := t.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &t.bucket, Key: &name,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		return 0, fmt.Errorf("upload %s: complete: %w", name, s3Err(err))
	}
	done = true
	return sent, nil
}

func (t *S3Target) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	out, err := t.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &t.bucket, Key: &name})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return nil, fmt.Errorf("download %s: %w", name, s3Err(err))
	}
	return out.Body, nil
}

func (t *S3Target) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(t.c, &s3.ListObjectsV2Input{Bucket: &t.bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", t, s3Err(err))
		}
		for _, o := range page.Contents {
			name := aws.ToString(o.Key)
			if CheckName(name) != nil {
				continue // not ours
			}
			out = append(out, Object{Name: name, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (t *S3Target) Delete(ctx context.Context, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if _, err := t.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &t.bucket, Key: &name}); err != nil {
		return fmt.Errorf("delete %s: %w", name, s3Err(err))
	}
	return nil
}

// Sweep aborts multipart uploads started before cutoff: what a killed
// process leaves behind. They were never objects and were never listed.
func (t *S3Target) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: &t.bucket}
	for {
		out, err := t.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, fmt.Errorf("list partial uploads: %w", s3Err(err))
		}
		for _, u := range out.Uploads {
			if u.Initiated == nil || !u.Initiated.Before(cutoff) {
				continue
			}
			if _, err := t.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &t.bucket, Key: u.Key, UploadId: u.UploadId}); err == nil {
				n++
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// s3Err keeps S3's error code and message (e.g. SignatureDoesNotMatch) and
// drops the rest; the SDK never puts credentials in errors, and neither do we.
func s3Err(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%w: %s: %s", ErrTarget, ae.ErrorCode(), ae.ErrorMessage())
	}
	return fmt.Errorf("%w: %w", ErrTarget, err)
}

// ErrTarget: the backup target refused or failed a request.
var ErrTarget = errors.New("backup target")

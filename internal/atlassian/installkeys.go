package atlassian

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// errKeyService: the install-key service could not be asked (Jira retries).
var errKeyService = errors.New("atlassian: install-key service unavailable")

// installKeys fetches Atlassian's signed-install public keys by kid and keeps
// them: a kid names one key for good, so a cached key never goes stale.
//
// The kid comes from a token nobody has verified yet, so anyone can make
// Ferry look up a kid. Three things keep that cheap: a kid the service does
// not know is remembered (unknownKidTTL); concurrent lookups of one kid share
// one fetch; and fetches of kids not in the cache, all kids together, are
// limited by a token bucket (keyFetchBurst at once, then one per
// keyFetchEvery). A flood of forged installs with fresh kids then costs the
// key service a few requests a minute, keys already cached keep working, and
// a genuinely new kid (Atlassian rotated its key) waits at most keyFetchEvery
// after the bucket ran dry: the install is answered 503 with Retry-After.
type installKeys struct {
	base   string
	client Doer

	mu       sync.Mutex
	cache    map[string]*rsa.PublicKey
	unknown  map[string]time.Time // kids the service said it does not know, and when
	inflight map[string]*keyFetch // fetches under way, by kid
	tokens   float64              // fetches the bucket allows now
	filled   time.Time            // when tokens was last brought up to date
	now      func() time.Time
}

// keyFetch is one fetch of a kid that concurrent lookups wait for.
type keyFetch struct {
	done chan struct{}
	pub  *rsa.PublicKey
	err  error
}

// unknownKidTTL is how long a kid the key service does not know is answered
// from memory: forged installs with made-up kids then cost Atlassian's
// service one request per kid, not one per attempt.
const unknownKidTTL = 5 * time.Minute

// keyFetchBurst fetches may happen at once; after that one per
// keyFetchEvery. Atlassian rotates its install key rarely, and one fetch
// serves every later install signed with it.
const (
	keyFetchBurst = 8
	keyFetchEvery = 2 * time.Second
)

// keyFetchTimeout bounds one fetch from the key service.
const keyFetchTimeout = 10 * time.Second

// maxCachedKeys bounds memory; Atlassian rotates keys rarely.
const maxCachedKeys = 64

// retryLater reports that a kid cannot be looked up now because too many
// new kids were asked for lately; after is when the next fetch is due.
type retryLater struct{ after time.Duration }

func (e *retryLater) Error() string {
	return fmt.Sprintf("atlassian: install-key lookups limited; next in %v", e.after)
}

func newInstallKeys(base string, client Doer) *installKeys {
	return &installKeys{base: strings.TrimSuffix(base, "/"), client: client, cache: map[string]*rsa.PublicKey{},
		unknown: map[string]time.Time{}, inflight: map[string]*keyFetch{}, tokens: keyFetchBurst, now: time.Now}
}

// validKid keeps the kid a single path segment of known characters, so a
// forged header cannot steer the fetch to another path on the key service.
func validKid(kid string) bool {
	if kid == "" || len(kid) > 128 || kid == "." || kid == ".." {
		return false
	}
	for _, c := range kid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// take takes one fetch from the bucket, or says how long until one is due.
// k.mu is held.
func (k *installKeys) take() (ok bool, wait time.Duration) {
	now := k.now()
	if k.filled.IsZero() {
		k.filled = now
	}
	if el := now.Sub(k.filled); el > 0 {
		k.tokens = min(keyFetchBurst, k.tokens+float64(el)/float64(keyFetchEvery))
		k.filled = now
	}
	if k.tokens >= 1 {
		k.tokens--
		return true, 0
	}
	return false, time.Duration((1 - k.tokens) * float64(keyFetchEvery))
}

func (k *installKeys) get(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if !validKid(kid) {
		return nil, ErrKeyID
	}
	k.mu.Lock()
	if pub, ok := k.cache[kid]; ok {
		k.mu.Unlock()
		return pub, nil
	}
	if at, ok := k.unknown[kid]; ok && k.now().Sub(at) < unknownKidTTL {
		k.mu.Unlock()
		return nil, ErrKeyID
	}
	if f, ok := k.inflight[kid]; ok {
		k.mu.Unlock()
		select {
		case <-f.done:
			return f.pub, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", errKeyService, ctx.Err())
		}
	}
	if ok, wait := k.take(); !ok {
		k.mu.Unlock()
		keyFetches.WithLabelValues("limited").Inc()
		return nil, &retryLater{after: wait}
	}
	f := &keyFetch{done: make(chan struct{})}
	k.inflight[kid] = f
	k.mu.Unlock()

	// The fetch serves every lookup waiting for it, so one caller hanging up
	// must not cancel it; keyFetchTimeout bounds it instead.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyFetchTimeout)
	f.pub, f.err = k.fetch(fctx, kid)
	cancel()

	k.mu.Lock()
	delete(k.inflight, kid)
	switch {
	case f.err == nil:
		if len(k.cache) >= maxCachedKeys {
			clear(k.cache)
		}
		k.cache[kid] = f.pub
		keyFetches.WithLabelValues("fetched").Inc()
	case errors.Is(f.err, ErrKeyID):
		if len(k.unknown) >= maxCachedKeys*16 {
			clear(k.unknown)
		}
		k.unknown[kid] = k.now()
		keyFetches.WithLabelValues("unknown").Inc()
	default:
		keyFetches.WithLabelValues("error").Inc()
	}
	k.mu.Unlock()
	close(f.done)
	return f.pub, f.err
}

// fetch asks the key service for kid once.
func (k *installKeys) fetch(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	target := k.base + "/" + url.PathEscape(kid)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeyService, err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeyService, err)
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Host != req.URL.Host {
		return nil, fmt.Errorf("%w: redirected to another host", errKeyService)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
		return nil, ErrKeyID
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: HTTP %d", errKeyService, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeyService, err)
	}
	pub, err := parseRSAPublicKey(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeyService, err)
	}
	return pub, nil
}

// parseRSAPublicKey reads a PEM "PUBLIC KEY" (PKIX) RSA key of at least 2048
// bits; anything else is not an Atlassian install key.
func parseRSAPublicKey(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("install key is not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < 2048 {
		return nil, errors.New("install key is not an RSA key of at least 2048 bits")
	}
	return pub, nil
}

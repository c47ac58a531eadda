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
type installKeys struct {
	base   string
	client Doer

	mu      sync.Mutex
	cache   map[string]*rsa.PublicKey
	unknown map[string]time.Time // kids the service said it does not know, and when
	now     func() time.Time
}

// unknownKidTTL is how long a kid the key service does not know is answered
// from memory: forged installs with made-up kids then cost Atlassian's
// service one request per kid, not one per attempt.
const unknownKidTTL = 5 * time.Minute

// maxCachedKeys bounds memory; Atlassian rotates keys rarely.
const maxCachedKeys = 64

func newInstallKeys(base string, client Doer) *installKeys {
	return &installKeys{base: strings.TrimSuffix(base, "/"), client: client, cache: map[string]*rsa.PublicKey{},
		unknown: map[string]time.Time{}, now: time.Now}
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

func (k *installKeys) get(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if !validKid(kid) {
		return nil, ErrKeyID
	}
	k.mu.Lock()
	pub, ok := k.cache[kid]
	at, isUnknown := k.unknown[kid]
	k.mu.Unlock()
	if ok {
		return pub, nil
	}
	if isUnknown && k.now().Sub(at) < unknownKidTTL {
		return nil, ErrKeyID
	}
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
		k.mu.Lock()
		if len(k.unknown) >= maxCachedKeys*16 {
			clear(k.unknown)
		}
		k.unknown[kid] = k.now()
		k.mu.Unlock()
		return nil, ErrKeyID
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: HTTP %d", errKeyService, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeyService, err)
	}
	pub, err = parseRSAPublicKey(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeyService, err)
	}
	k.mu.Lock()
	if len(k.cache) >= maxCachedKeys {
		clear(k.cache)
	}
	k.cache[kid] = pub
	k.mu.Unlock()
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

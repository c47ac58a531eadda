// Package tokencache keeps short-lived access tokens in memory only — the
// Connect user tokens of the JWT-bearer grant and Forge's offline user
// tokens — so that the many requests of one export share one exchange.
package tokencache

import (
	"context"
	"strings"
	"sync"
	"time"
)

// RenewBefore is how long before its expiry a token is replaced, so that it
// never expires in flight; a token that lives less than twice that is
// replaced at half-life.
const RenewBefore = 60 * time.Second

// maxEntries bounds memory; past it, entries due for renewal are dropped.
const maxEntries = 10000

// Cache holds tokens by key. One fetch per key at a time: concurrent
// callers for the same key wait for the same exchange.
type Cache struct {
	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	mu      sync.Mutex
	token   string
	renewAt time.Time
}

// New returns an empty cache.
func New() *Cache { return &Cache{entries: map[string]*entry{}} }

// Get returns key's token, calling fetch (token, lifetime) when there is
// none or it is due for renewal. A failed fetch is not cached.
func (c *Cache) Get(ctx context.Context, key string, now func() time.Time, fetch func() (string, time.Duration, error)) (string, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		if len(c.entries) >= maxEntries {
			t := now()
			for k, v := range c.entries {
				if v.mu.TryLock() {
					if !t.Before(v.renewAt) {
						delete(c.entries, k)
					}
					v.mu.Unlock()
				}
			}
		}
		e = &entry{}
		c.entries[key] = e
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" && now().Before(e.renewAt) {
		return e.token, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err // the caller left while waiting for another's exchange
	}
	tok, ttl, err := fetch()
	if err != nil {
		return "", err
	}
	lead := RenewBefore
	if ttl <= 2*RenewBefore {
		lead = ttl / 2
	}
	e.token, e.renewAt = tok, now().Add(ttl-lead)
	return tok, nil
}

// ForgetPrefix drops every token whose key starts with prefix.
func (c *Cache) ForgetPrefix(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if strings.HasPrefix(k, prefix) {
			delete(c.entries, k)
		}
	}
}

package egress

import (
	"context"
	"sync"
	"time"
)

// CachedSites remembers, for ttl, the hosts ts said are installed tenants'
// sites, so that a feed's calls to Jira do not each cost a database query.
// Only "yes" is remembered: a host that is not (or no longer) a tenant's
// site is asked about every time, and one that stops being one is refused
// at most ttl later.
func CachedSites(ts TenantSites, ttl time.Duration) *SitesCache {
	return &SitesCache{ts: ts, ttl: ttl, known: map[string]time.Time{}}
}

// SitesCache is CachedSites' cache.
type SitesCache struct {
	ts    TenantSites
	ttl   time.Duration
	mu    sync.Mutex
	known map[string]time.Time // host → when ts last said yes
}

func (c *SitesCache) KnownSite(ctx context.Context, host string) bool {
	now := time.Now()
	c.mu.Lock()
	at, ok := c.known[host]
	c.mu.Unlock()
	if ok && now.Sub(at) < c.ttl {
		return true
	}
	if !c.ts.KnownSite(ctx, host) {
		c.mu.Lock()
		delete(c.known, host)
		c.mu.Unlock()
		return false
	}
	c.mu.Lock()
	if len(c.known) > 10000 {
		clear(c.known)
	}
	c.known[host] = now
	c.mu.Unlock()
	return true
}

// Flush forgets every remembered site (a tenant's state changed).
func (c *SitesCache) Flush() {
	c.mu.Lock()
	clear(c.known)
	c.mu.Unlock()
}

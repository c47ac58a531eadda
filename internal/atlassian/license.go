package atlassian

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/tenant"
)

// licenseTTL is how long a license answer is trusted; a site that buys or
// lapses sees the change within this time.
const licenseTTL = 5 * time.Minute

type licenseEntry struct {
	active bool
	at     time.Time
}

// LicenseActive asks the tenant's Jira whether the site's license for this
// app is active (GET /rest/atlassian-connect/1/addons/{addonKey}, signed as
// the app) and caches the answer in memory (5 minutes unless
// Options.LicenseCacheTTL says otherwise). A site with no
// license object (a free or unlicensed install) is not active.
func (c *Connect) LicenseActive(ctx context.Context, inst tenant.Installation) (bool, error) {
	c.licMu.Lock()
	e, ok := c.licenses[inst.TenantID]
	c.licMu.Unlock()
	if ok && c.now().Sub(e.at) < c.licTTL {
		return e.active, nil
	}
	target := inst.BaseURL + "/rest/atlassian-connect/1/addons/" + url.PathEscape(c.cfg.AddonKey)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	if err := c.AppAuth(inst).Authorize(ctx, req); err != nil {
		return false, err
	}
	resp, err := c.jira.Do(req)
	if err != nil {
		return false, fmt.Errorf("atlassian: license check: %w", err)
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Host != req.URL.Host {
		return false, fmt.Errorf("atlassian: license check redirected to another host")
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("atlassian: license check: HTTP %d", resp.StatusCode)
	}
	var out struct {
		License *struct {
			Active bool `json:"active"`
		} `json:"license"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<10)).Decode(&out); err != nil {
		return false, fmt.Errorf("atlassian: license check: %w", err)
	}
	active := out.License != nil && out.License.Active
	c.licMu.Lock()
	c.licenses[inst.TenantID] = licenseEntry{active: active, at: c.now()}
	c.licMu.Unlock()
	return active, nil
}

// RequireLicense is LicenseActive for the feeds: nil when licensed, an
// apperr.EPAYMENT (402) with UnlicensedMessage when not, EUNAVAILABLE when
// Jira cannot say.
func (c *Connect) RequireLicense(ctx context.Context, inst tenant.Installation) error {
	ok, err := c.LicenseActive(ctx, inst)
	if err != nil {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "the license could not be checked with Jira; try again shortly")
	}
	if !ok {
		return apperr.New(apperr.EPAYMENT, "%s", UnlicensedMessage)
	}
	return nil
}

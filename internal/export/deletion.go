package export

import (
	"context"
	"net/http"
	"strings"

	"ferry/internal/apperr"
	"ferry/internal/tenant"
)

// Immediate deletion from the admin page (statement: "the customer can
// contact us to ask for immediate manual deletion"; P16). A Jira
// administrator confirms by typing the site's host name; Ferry then marks
// the tenant for deletion now, the app behaves as uninstalled at once, and
// the purge (tenant.Purger) deletes every row and shreds the keyset within
// minutes. Data sources and settings live in the site's Jira as app
// properties and are not Ferry's to delete.

// TenantDeletion asks for a tenant's immediate deletion (tenant.Purger).
type TenantDeletion interface {
	RequestDeletion(ctx context.Context, tenantID string, d tenant.Deletion) error
}

// mayDelete is the same check as the settings: Jira administrators only.
func (a *App) mayDelete(r *http.Request, c appCtx) error {
	if a.Deletion == nil {
		return apperr.New(apperr.ENOTFOUND, "Deletion from the app is not available on this server.")
	}
	ro, err := a.role(r, c)
	if err != nil {
		return err
	}
	if !ro.Admin {
		return apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can delete Ferry's data for this site.")
	}
	return nil
}

func (a *App) getDeletion(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if err := a.mayDelete(r, c); err != nil {
		return err
	}
	out := map[string]any{"siteHost": tenant.SiteHost(c.p.Installation.BaseURL)}
	if a.PurgeGrace > 0 {
		out["purgeGraceDays"] = int(a.PurgeGrace.Hours() / 24)
	}
	return writeJSON(w, 200, out)
}

func (a *App) requestDeletion(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if err := a.mayDelete(r, c); err != nil {
		return err
	}
	var in struct {
		SiteHost string `json:"siteHost"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	host := tenant.SiteHost(c.p.Installation.BaseURL)
	if !strings.EqualFold(strings.TrimSpace(in.SiteHost), host) {
		return apperr.Invalid("siteHost", "To confirm, type this site's host name, %s, exactly.", host)
	}
	// The audit trail names the administrator by pseudonym only, which the
	// purge makes unlinkable along with the rest of the tenant.
	if err := a.Deletion.RequestDeletion(r.Context(), c.p.TenantID(), tenant.Deletion{Cause: tenant.CauseSiteAdmin,
		Actor: "jira:" + c.p.UserPseudonym}); err != nil {
		return err
	}
	a.Log.InfoContext(r.Context(), "immediate deletion requested from the admin page", "tenant", c.p.TenantID())
	return writeJSON(w, http.StatusAccepted, map[string]any{"status": "scheduled",
		"message": "Ferry is deleting everything it stores for this site. This takes a few minutes; the app stops working now."})
}

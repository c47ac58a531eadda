package forge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/jira"
	"ferry/internal/jobs"
	"ferry/internal/tenant"
)

// The connector's Platform on Forge (export.Platform; the CLI wires it):
// metadata as the app, rows as the user, data sources in Forge storage, the
// licence as Forge last said it.

// AppClient calls the product API as the app: metadata only.
func (f *Remote) AppClient(ctx context.Context, inst tenant.Installation) (*jira.Client, error) {
	return f.appClient(ctx, inst)
}

// UserClient calls the product API as accountID.
func (f *Remote) UserClient(ctx context.Context, inst tenant.Installation, accountID string) (*jira.Client, error) {
	c, err := f.userClient(ctx, inst, accountID)
	if err != nil {
		return nil, err
	}
	c.Retry = jira.DefaultRetry
	return c, nil
}

// UnlicensedMessage is what the feeds say to a site whose Forge licence is
// inactive.
const UnlicensedMessage = "This Jira site has no active license for Ferry BI Connector. A Jira administrator can buy or renew it under Apps → Manage apps; feeds resume as soon as the license is active."

// LicenseActive reports the licence the latest Forge invocation carried.
// An invocation without app.license (a free app, a development or staging
// environment) counts as licensed, as Forge intends.
func (f *Remote) LicenseActive(_ context.Context, inst tenant.Installation) (bool, error) {
	switch inst.ForgeLicense {
	case tenant.LicenseActive, tenant.LicenseNone:
		return true, nil
	case tenant.LicenseInactive:
		return false, nil
	}
	return false, fmt.Errorf("forge: no licence seen for the installation yet")
}

// RequireLicense is what a feed asks first: a live system token (else the
// 503 that says since when Jira has not reached the app), then the licence
// last seen, which must be active and younger than FERRY_FORGE_LICENSE_MAX_AGE.
func (f *Remote) RequireLicense(ctx context.Context, inst tenant.Installation) error {
	if _, err := f.systemToken(ctx, inst); err != nil {
		return err
	}
	if inst.ForgeLicense == tenant.LicenseInactive {
		return apperr.New(apperr.EPAYMENT, "%s", UnlicensedMessage)
	}
	if inst.ForgeLicense == tenant.LicenseUnknown || f.now().Sub(inst.ForgeLicenseAt) > f.o.LicenseMaxAge {
		return apperr.New(apperr.EUNAVAILABLE, "Jira has not confirmed this site's license for Ferry BI Connector for %s; feeds resume when Jira invokes the app again.",
			f.now().Sub(inst.ForgeLicenseAt).Round(time.Minute))
	}
	return nil
}

// LicenseCheck answers the tenant.expiry job for a Forge tenant from the
// licence Forge last sent; a licence too old to trust says nothing.
func (f *Remote) LicenseCheck(ctx context.Context, inst tenant.Installation) (bool, error) {
	if inst.ForgeLicense != tenant.LicenseUnknown && f.now().Sub(inst.ForgeLicenseAt) > f.o.LicenseMaxAge {
		return false, fmt.Errorf("forge: the licence was last seen %s ago", f.now().Sub(inst.ForgeLicenseAt).Round(time.Minute))
	}
	return f.LicenseActive(ctx, inst)
}

// Moving a Connect site to Forge: its data sources and settings are Connect
// app properties, which the Forge app may read (same app.connect.key). The
// first Forge contact of such a site queues MigrateJobName, which copies
// each data source ("ds." keys), what stays of deleted ones ("dsh.": their
// history, which administrators read) and the settings into Forge storage
// — a key Forge storage already holds is left alone, so a repeated or
// interrupted move never overwrites newer data — and then marks the tenant
// migrated: from then on sources are read and written in Forge storage only.

// MigrateJobName is the job's name for `ferry jobs run`.
const MigrateJobName = "forge.migrate"

// Migrate moves one tenant's data sources into Forge storage and reports how
// many values it copied.
func (f *Remote) Migrate(ctx context.Context, inst tenant.Installation) (int, error) {
	app, err := f.appClient(ctx, inst)
	if err != nil {
		return 0, err
	}
	store, err := f.Storage(ctx, inst)
	if err != nil {
		return 0, err
	}
	keys, err := app.PropertyKeys(ctx, f.o.AddonKey)
	if err != nil && !jira.IsStatus(err, 404) {
		return 0, fmt.Errorf("read the Connect app properties: %w", err)
	}
	copied := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, "ds.") && !strings.HasPrefix(k, "dsh.") && k != "settings" {
			continue
		}
		var have json.RawMessage
		if found, err := store.Get(ctx, k, &have); err != nil {
			return copied, err
		} else if found {
			continue
		}
		var v json.RawMessage
		if err := app.GetProperty(ctx, f.o.AddonKey, k, &v); err != nil {
			if jira.IsStatus(err, 404) {
				continue
			}
			return copied, fmt.Errorf("read the Connect app property: %w", err)
		}
		if err := store.Put(ctx, k, v); err != nil {
			return copied, fmt.Errorf("write Forge storage: %w", err)
		}
		copied++
	}
	if err := f.o.Tenants.MarkMigrated(ctx, inst.TenantID); err != nil {
		return copied, err
	}
	f.Forget(inst.TenantID)
	return copied, nil
}

// MigrateJob moves the data sources of every migrated site Forge has
// reached; queued by a first contact, and every 15 minutes to catch up.
func MigrateJob(f *Remote, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  MigrateJobName,
		Doc:   "move migrated Connect sites' data sources into Forge storage",
		Every: 15 * time.Minute,
		Run: func(ctx context.Context) error {
			pending, err := f.o.Tenants.PendingMigration(ctx)
			if err != nil {
				return err
			}
			var failed int
			for _, in := range pending {
				n, err := f.Migrate(ctx, in)
				if err != nil {
					failed++
					if log != nil {
						log.WarnContext(ctx, "forge migration failed; retried on the next run", "tenant", in.TenantID, "err", err)
					}
					continue
				}
				if log != nil {
					log.InfoContext(ctx, "forge migration: data sources moved into Forge storage", "tenant", in.TenantID, "values", n)
				}
			}
			if failed > 0 {
				return fmt.Errorf("forge migration: %d of %d sites failed", failed, len(pending))
			}
			return nil
		},
	}
}

// TokenAgeJobName is the job's name for `ferry jobs run`.
const TokenAgeJobName = "forge.token-age"

// TokenAgeJob refreshes ferry_forge_system_token_age_seconds for every Forge
// tenant each minute, so a trigger that stopped shows before a feed fails.
func TokenAgeJob(f *Remote) jobs.Job {
	return jobs.Job{
		Name:  TokenAgeJobName,
		Doc:   "update the age of each Forge tenant's app system token (metric)",
		Every: time.Minute,
		Run: func(ctx context.Context) error {
			list, err := f.o.Tenants.Forge(ctx)
			if err != nil {
				return err
			}
			for _, in := range list {
				if !in.SystemTokenAt.IsZero() {
					systemTokenAge.WithLabelValues(in.TenantID).Set(f.now().Sub(in.SystemTokenAt).Seconds())
				}
			}
			return nil
		},
	}
}

package cli

import (
	"context"

	"ferry/internal/export"
	"ferry/internal/forge"
	"ferry/internal/jira"
	"ferry/internal/tenant"
)

// forgePlatform is the connector's Platform on Forge (export.Platform):
// internal/forge never imports the connector, so the CLI joins them here.
type forgePlatform struct{ r *forge.Remote }

var _ export.Platform = forgePlatform{}

func (p forgePlatform) AppClient(ctx context.Context, inst tenant.Installation) (*jira.Client, error) {
	return p.r.AppClient(ctx, inst)
}

func (p forgePlatform) UserClient(ctx context.Context, inst tenant.Installation, accountID string) (*jira.Client, error) {
	return p.r.UserClient(ctx, inst, accountID)
}

func (p forgePlatform) Properties(ctx context.Context, inst tenant.Installation) (export.PropertyStore, error) {
	return p.r.Storage(ctx, inst)
}

func (p forgePlatform) LicenseActive(ctx context.Context, inst tenant.Installation) (bool, error) {
	return p.r.LicenseActive(ctx, inst)
}

func (p forgePlatform) RequireLicense(ctx context.Context, inst tenant.Installation) error {
	return p.r.RequireLicense(ctx, inst)
}

// licenseCheck answers the tenant.expiry job: Forge tenants from the licence
// Forge last sent, Connect tenants from their Jira.
func (a *app) licenseCheck() tenant.LicenseCheck {
	if a.forge == nil {
		return a.connect.LicenseActive
	}
	return func(ctx context.Context, in tenant.Installation) (bool, error) {
		if in.OnForge() || !in.Connect {
			return a.forge.LicenseCheck(ctx, in)
		}
		return a.connect.LicenseActive(ctx, in)
	}
}

package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"ferry/internal/config"
	"ferry/internal/export"
	"ferry/internal/forge"
	"ferry/internal/jira"
	"ferry/internal/tenant"
	"ferry/internal/web"
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

// runForge is `ferry forge manifest` (writes forge/manifest.yml from the
// configuration) and `ferry forge ui` (renders the Custom UI build with a
// bundle that forge/build made).
func runForge(ctx context.Context, e env, args []string) error {
	const use = "usage: ferry forge manifest [--out forge/manifest.yml] | ferry forge ui --bundle FILE [--out forge/static]"
	if len(args) == 0 {
		return &usageError{use}
	}
	var out, bundle string
	cfg, rest, err := loadConfig(e, "forge "+args[0], args[1:], func(fs *flag.FlagSet) {
		switch args[0] {
		case "manifest":
			fs.StringVar(&out, "out", filepath.Join("forge", "manifest.yml"), "where to write the manifest ('-' for standard output)")
		case "ui":
			fs.StringVar(&out, "out", filepath.Join("forge", "static"), "the Custom UI folder the manifest's resources name")
			fs.StringVar(&bundle, "bundle", "", "the bundled script (node forge/bundle.mjs)")
		}
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q; %s", rest[0], use)}
	}
	switch args[0] {
	case "manifest":
		if cfg.ForgeAppID == "" {
			return &config.Error{Var: "FERRY_FORGE_APP_ID", Reason: "the manifest needs the app's id (ari:cloud:ecosystem::app/UUID; forge register prints it)"}
		}
		m, err := forge.Manifest(forgeManifestOptions(cfg))
		if err != nil {
			return &config.Error{Var: "forge manifest", Reason: err.Error()}
		}
		if out == "-" {
			_, err := e.stdout.Write(m)
			return err
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, m, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s for app %s (remote %s)\n", out, cfg.ForgeAppID, cfg.BaseURL)
		return nil
	case "ui":
		if bundle == "" {
			return &usageError{"--bundle is required; " + use}
		}
		b, err := os.ReadFile(bundle)
		if err != nil {
			return &usageError{"--bundle: " + err.Error()}
		}
		if err := web.WriteCustomUI(out, b); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote the Custom UI to %s\n", out)
		return nil
	}
	return &usageError{fmt.Sprintf("unknown forge command %q; %s", args[0], use)}
}

// forgeManifestOptions reads the manifest's settings from the configuration.
func forgeManifestOptions(cfg config.Config) forge.ManifestOptions {
	o := forge.ManifestOptions{AppID: cfg.ForgeAppID, BaseURL: cfg.BaseURL, AddonKey: cfg.AddonKey, RegionURLs: map[string]string{}}
	for _, p := range cfg.ForgeRegionURLs {
		r, u, _ := strings.Cut(p, "=")
		o.RegionURLs[strings.ToUpper(strings.TrimSpace(r))] = strings.TrimSpace(u)
	}
	return o
}

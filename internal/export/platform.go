package export

import (
	"context"
	"net/http"
	"strings"

	"ferry/internal/atlassian"
	"ferry/internal/jira"
	"ferry/internal/tenant"
)

// The connector reaches a tenant's Jira through a Platform: Atlassian
// Connect (JWTs signed with the shared secret, the JWT-bearer grant to act
// as a user, app properties) or Forge Remote (the app system token, offline
// user impersonation, Forge storage; internal/forge). Feeds and the app's
// API ask the Platform of the installation and never know which it is, so
// every guarantee of the connector holds on both.

// Platform is one way to reach a tenant's Jira.
type Platform interface {
	// AppClient calls Jira as the app: metadata only (fields, a user's
	// groups, display names), never issue data.
	AppClient(ctx context.Context, inst tenant.Installation) (*jira.Client, error)
	// UserClient calls Jira as the user accountID: every row a feed returns
	// comes through it, so each person gets exactly what they may browse.
	UserClient(ctx context.Context, inst tenant.Installation, accountID string) (*jira.Client, error)
	// Properties is where the tenant's data sources and settings live, in
	// the customer's own Atlassian site.
	Properties(ctx context.Context, inst tenant.Installation) (PropertyStore, error)
	// LicenseActive reports whether the site's licence is active.
	LicenseActive(ctx context.Context, inst tenant.Installation) (bool, error)
	// RequireLicense is nil for a licensed site, else the error a feed answers.
	RequireLicense(ctx context.Context, inst tenant.Installation) error
}

// PropertyStore keeps JSON values by key in the customer's site: Connect app
// properties or Forge storage.
type PropertyStore interface {
	// Keys lists the keys that start with prefix.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Get decodes the value of key into out; found is false if there is none.
	Get(ctx context.Context, key string, out any) (found bool, err error)
	// Put stores value under key.
	Put(ctx context.Context, key string, value any) error
	// Delete removes key; a key that is not there is not an error.
	Delete(ctx context.Context, key string) error
}

// Platforms picks each installation's Platform: Forge once Forge has reached
// Ferry for the installation (tenant.Installation.OnForge), else Connect. Its
// data sources stay in Connect app properties until they have been moved
// into Forge storage (SourcesInForge).
type Platforms struct {
	Connect Platform
	Forge   Platform // nil: Ferry runs without Forge
}

var _ Platform = Platforms{}

func (p Platforms) of(inst tenant.Installation) Platform {
	if p.Forge != nil && (inst.OnForge() || !inst.Connect) {
		return p.Forge
	}
	return p.Connect
}

func (p Platforms) AppClient(ctx context.Context, inst tenant.Installation) (*jira.Client, error) {
	return p.of(inst).AppClient(ctx, inst)
}

func (p Platforms) UserClient(ctx context.Context, inst tenant.Installation, accountID string) (*jira.Client, error) {
	return p.of(inst).UserClient(ctx, inst, accountID)
}

func (p Platforms) Properties(ctx context.Context, inst tenant.Installation) (PropertyStore, error) {
	if p.Forge != nil && (inst.SourcesInForge() || !inst.Connect) {
		return p.Forge.Properties(ctx, inst)
	}
	return p.Connect.Properties(ctx, inst)
}

func (p Platforms) LicenseActive(ctx context.Context, inst tenant.Installation) (bool, error) {
	return p.of(inst).LicenseActive(ctx, inst)
}

func (p Platforms) RequireLicense(ctx context.Context, inst tenant.Installation) error {
	return p.of(inst).RequireLicense(ctx, inst)
}

// ConnectPlatform reaches Jira through Atlassian Connect.
type ConnectPlatform struct {
	Connect  *atlassian.Connect
	HTTP     *http.Client // the egress gate's Jira client
	AddonKey string
}

var _ Platform = ConnectPlatform{}

func (c ConnectPlatform) AppClient(_ context.Context, inst tenant.Installation) (*jira.Client, error) {
	return jira.New(inst.BaseURL, c.HTTP, c.Connect.AppAuth(inst))
}

func (c ConnectPlatform) UserClient(_ context.Context, inst tenant.Installation, accountID string) (*jira.Client, error) {
	return jira.New(inst.BaseURL, c.HTTP, c.Connect.UserAuth(inst, accountID))
}

func (c ConnectPlatform) Properties(ctx context.Context, inst tenant.Installation) (PropertyStore, error) {
	app, err := c.AppClient(ctx, inst)
	if err != nil {
		return nil, err
	}
	return AppProperties{Client: app, AddonKey: c.AddonKey}, nil
}

func (c ConnectPlatform) LicenseActive(ctx context.Context, inst tenant.Installation) (bool, error) {
	return c.Connect.LicenseActive(ctx, inst)
}

func (c ConnectPlatform) RequireLicense(ctx context.Context, inst tenant.Installation) error {
	return c.Connect.RequireLicense(ctx, inst)
}

// AppProperties are Connect app properties: visible only to the app that
// owns them, each at most 32 KB.
type AppProperties struct {
	Client   *jira.Client // signed as the app
	AddonKey string
}

var _ PropertyStore = AppProperties{}

func (a AppProperties) Keys(ctx context.Context, prefix string) ([]string, error) {
	all, err := a.Client.PropertyKeys(ctx, a.AddonKey)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range all {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (a AppProperties) Get(ctx context.Context, key string, out any) (bool, error) {
	err := a.Client.GetProperty(ctx, a.AddonKey, key, out)
	if jira.IsStatus(err, http.StatusNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (a AppProperties) Put(ctx context.Context, key string, value any) error {
	return a.Client.PutProperty(ctx, a.AddonKey, key, value)
}

func (a AppProperties) Delete(ctx context.Context, key string) error {
	err := a.Client.DeleteProperty(ctx, a.AddonKey, key)
	if jira.IsStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

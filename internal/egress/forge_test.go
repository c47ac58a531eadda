package egress

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Forge's endpoints are Atlassian's (the parent product): the key set on
// Atlassian's CDN and the API gateway. Each is its own category, and a
// setting pointing anywhere else is refused at start-up.
func TestForgeCategoriesAreAtlassianOnly(t *testing.T) {
	g, err := New(Config{Region: "us-west-2",
		ForgeJWKSURL:    "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json",
		ForgeGraphQLURL: "https://api.atlassian.com/graphql",
		ForgeStorageURL: "https://api.atlassian.com/forge/storage/kvs"})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Allowlist(ForgeKeys); !slices.Equal(got, []string{"forge.cdn.prod.atlassian-dev.net:443"}) {
		t.Errorf("ForgeKeys = %v", got)
	}
	if got := g.Allowlist(ForgeAPI); !slices.Equal(got, []string{"api.atlassian.com:443"}) {
		t.Errorf("ForgeAPI = %v", got)
	}
	// The API gateway client does not reach a tenant's site or anyone else.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://evil.example/ex/jira/x/rest/api/3/myself", nil)
	if _, err := g.Client(ForgeAPI).Do(req); !errors.Is(err, ErrDestinationRefused) {
		t.Fatalf("ForgeAPI to another host: %v", err)
	}
	for _, c := range []struct {
		cfg     Config
		setting string
	}{
		{Config{Region: "us-west-2", ForgeJWKSURL: "https://keys.example.com/jwks.json"}, "FERRY_FORGE_JWKS_URL"},
		{Config{Region: "us-west-2", ForgeGraphQLURL: "https://api.atlassian.com.evil.example/graphql"}, "FERRY_FORGE_GRAPHQL_URL"},
		{Config{Region: "us-west-2", ForgeStorageURL: "http://api.atlassian.com/forge/storage/kvs"}, "FERRY_FORGE_STORAGE_URL"},
	} {
		_, err := New(c.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Setting != c.setting || !strings.Contains(err.Error(), c.setting) {
			t.Errorf("%+v: %v; want a configuration error naming %s", c.cfg, err, c.setting)
		}
	}
}

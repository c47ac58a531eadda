package egress

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDefaultSubprocessorsAreTheStatementsSubcontractors(t *testing.T) {
	subs := DefaultSubprocessors("us-west-2")
	var names []string
	for _, s := range subs {
		names = append(names, s.Name)
		if s.Entity == "" || s.Location == "" || s.Purpose == "" || len(s.DataCategories) == 0 || len(s.Hosts) == 0 || s.PrivacyURL == "" {
			t.Errorf("subprocessor %q has an empty field: %+v", s.Name, s)
		}
	}
	if !slices.Equal(names, []string{"Amazon Web Services", "Sentry"}) {
		t.Fatalf("subprocessors = %v, want the statement's Amazon and Sentry", names)
	}
	if subs[0].Location != "Oregon, USA (us-west-2)" {
		t.Errorf("AWS location = %q, want Oregon, USA (us-west-2)", subs[0].Location)
	}
	if !strings.Contains(subs[1].Entity, "Functional Software, Inc.") || !strings.Contains(subs[1].Entity, "San Francisco") {
		t.Errorf("Sentry entity = %q", subs[1].Entity)
	}
}

func TestRegistryKeepsDeclaredOrderAndIsACopy(t *testing.T) {
	subs := DefaultSubprocessors("us-west-2")
	r, err := NewRegistry(subs)
	if err != nil {
		t.Fatal(err)
	}
	subs[0].Name = "changed"
	all := r.All()
	all[1].Hosts[0] = "changed"
	if got := r.All(); got[0].Name != "Amazon Web Services" || got[1].Hosts[0] != "sentry.io" {
		t.Fatalf("registry changed through a caller's slice: %+v", got)
	}
	if s, ok := r.OperatorOf("o1.ingest.us.sentry.io"); !ok || s.Name != "Sentry" {
		t.Errorf("OperatorOf(sentry ingest) = %q, %v", s.Name, ok)
	}
	if s, ok := r.OperatorOf("email-smtp.us-west-2.amazonaws.com"); !ok || s.Name != "Amazon Web Services" {
		t.Errorf("OperatorOf(SES) = %q, %v", s.Name, ok)
	}
	if _, ok := r.OperatorOf("amazonaws.com.evil.example"); ok {
		t.Error("suffix match is not anchored")
	}
	if _, ok := r.Lookup("sentry"); !ok {
		t.Error("Lookup is not case-insensitive")
	}
}

func TestRegistryRejectsBadDeclarations(t *testing.T) {
	ok := Subprocessor{Name: "A", Location: "x", Purpose: "y", Hosts: []string{"*.a.example"}}
	for name, subs := range map[string][]Subprocessor{
		"no name":      {{Location: "x", Purpose: "y"}},
		"duplicate":    {ok, ok},
		"no purpose":   {{Name: "B", Location: "x"}},
		"broad host":   {{Name: "B", Location: "x", Purpose: "y", Hosts: []string{"*.com"}}},
		"odd notation": {{Name: "B", Location: "x", Purpose: "y", Hosts: []string{"0x7f.1"}}},
	} {
		var ce *ConfigError
		if _, err := NewRegistry(subs); !errors.As(err, &ce) || ce.Setting != "FERRY_SUBPROCESSORS" {
			t.Errorf("%s: NewRegistry = %v, want a FERRY_SUBPROCESSORS error", name, err)
		}
	}
}

func TestNewRefusesDestinationsOfUndeclaredSubprocessors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"smtp elsewhere", func(c *Config) { c.SMTPAddr = "smtp.mailgun.org:587" },
			"FERRY_SMTP_ADDR: smtp.mailgun.org is not operated by a declared subprocessor; declare it before sending data there"},
		{"sentry self-hosted elsewhere", func(c *Config) { c.SentryUpstreamDSN = "https://key@errors.example.com/1" },
			"FERRY_SENTRY_UPSTREAM_DSN: errors.example.com is not operated by a declared subprocessor; declare it before sending data there"},
		{"install keys not atlassian", func(c *Config) { c.InstallKeysURL = "https://keys.example.com" },
			"FERRY_CONNECT_INSTALL_KEYS_URL: keys.example.com is not an Atlassian host (*.atlassian.com)"},
		{"oauth over http", func(c *Config) { c.OAuthURL = "http://oauth-2-authorization-server.services.atlassian.com" },
			"FERRY_CONNECT_OAUTH_URL: must be an https:// URL (http:// only for loopback with FERRY_EGRESS_ALLOW_LOOPBACK)"},
		{"jira pattern too broad", func(c *Config) { c.AllowedHostPatterns = []string{"*.net"} },
			`FERRY_CONNECT_ALLOWED_HOSTS: host pattern "*.net" is too broad; name a registered domain such as *.atlassian.net`},
		{"jira loopback without permission", func(c *Config) { c.AllowedHostPatterns = []string{"127.0.0.1:*"} },
			`FERRY_CONNECT_ALLOWED_HOSTS: "127.0.0.1:*" is loopback; needs FERRY_EGRESS_ALLOW_LOOPBACK`},
		{"region checked too", func(c *Config) { c.Region = "" },
			"FERRY_REGION: not set; Ferry must know its hosting region (e.g. us-west-2 for Oregon, USA)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Region: "us-west-2"}
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("New = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestNewAcceptsTheProductionConfiguration(t *testing.T) {
	g, err := New(Config{
		Region:            "us-west-2",
		S3Bucket:          "ferry-backups",
		KMSKeyURI:         testKey,
		SentryUpstreamDSN: "https://abc@o12345.ingest.us.sentry.io/678",
		SMTPAddr:          "email-smtp.us-west-2.amazonaws.com:587",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Category][]string{
		Jira:        {"*.atlassian.net:443", "*.jira.com:443", "*.jira-dev.com:443"},
		InstallKeys: {"connect-install-keys.atlassian.com:443"},
		OAuth:       {"oauth-2-authorization-server.services.atlassian.com:443"},
		Sentry:      {"o12345.ingest.us.sentry.io:443"},
		SMTP:        {"email-smtp.us-west-2.amazonaws.com:587"},
		S3:          {"s3.us-west-2.amazonaws.com:443", "ferry-backups.s3.us-west-2.amazonaws.com:443"},
		KMS:         {"kms.us-west-2.amazonaws.com:443", "kms-fips.us-west-2.amazonaws.com:443"},
	}
	for _, c := range Categories() {
		if got := g.Allowlist(c); !slices.Equal(got, want[c]) {
			t.Errorf("Allowlist(%s) = %v, want %v", c, got, want[c])
		}
	}
	if g.Region() != "us-west-2" || len(g.Registry().All()) != 2 {
		t.Errorf("region %q, registry %v", g.Region(), g.Registry().All())
	}
}

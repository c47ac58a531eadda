package web

import (
	"testing"

	"ferry/internal/config"
)

func TestFrameAncestorsComeFromConnectAllowedHosts(t *testing.T) {
	cases := []struct {
		name     string
		hosts    []string
		loopback bool
		want     string
	}{
		{"defaults", config.Default().ConnectAllowedHosts, false, "https://*.atlassian.net https://*.jira.com https://*.jira-dev.com"},
		{"loopback refused unless allowed", []string{"*.atlassian.net", "127.0.0.1:*", "localhost:*"}, false, "https://*.atlassian.net"},
		{"loopback allowed", []string{"127.0.0.1:*", "localhost:*"}, true, "http://127.0.0.1:* http://localhost:*"},
		{"fixed port", []string{"127.0.0.1:8080", "jira.example.com:8443"}, true, "http://127.0.0.1:8080 https://jira.example.com:8443"},
		{"ipv6 loopback", []string{"[::1]:*"}, true, "http://[::1]:*"},
		{"case and duplicates", []string{"*.Atlassian.net", "*.atlassian.net"}, false, "https://*.atlassian.net"},
		{"nothing allowed", nil, false, "'none'"},
		{"injection ignored", []string{"evil.example; script-src *", "'unsafe-inline'", "https://x.example"}, false, "'none'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Config{ConnectAllowedHosts: c.hosts, AllowLoopback: c.loopback}
			if got := frameAncestors(cfg); got != c.want {
				t.Errorf("frameAncestors(%q, loopback=%v) = %q, want %q", c.hosts, c.loopback, got, c.want)
			}
		})
	}
}

func TestEveryTemplateAssetExists(t *testing.T) {
	for _, name := range []string{"app.js", "app.css", "sentry.js", "sentry-init.js"} {
		if _, ok := assets[name]; !ok {
			t.Errorf("static/%s not embedded", name)
		}
	}
	if len(pageTemplates) != 2 {
		t.Errorf("pages = %d, want 2", len(pageTemplates))
	}
}

func TestScriptSourcesAreOursAndAtlassiansConnectScriptOnly(t *testing.T) {
	for raw, want := range map[string]string{
		"https://connect-cdn.atl-paas.net/all.js":          "https://connect-cdn.atl-paas.net",
		"http://127.0.0.1:41234/atlassian-connect/all.js":  "http://127.0.0.1:41234",
		"javascript:alert(1)":                              "",
		"https://evil.example; script-src * 'unsafe-eval'": "",
		"": "",
	} {
		if got := scriptOrigin(raw); got != want {
			t.Errorf("scriptOrigin(%q) = %q, want %q", raw, got, want)
		}
	}
}

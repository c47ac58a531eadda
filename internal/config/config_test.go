package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	cfg, _, err := Load("serve", args, func(k string) string { return env[k] }, nil)
	return cfg, err
}

// With nothing set, Load gives Default: SQLite and a key file in ./ferry-data,
// listening on loopback, metrics on their own loopback port.
func TestDefaults(t *testing.T) {
	cfg, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("Load with nothing set:\n%+v\nwant Default:\n%+v", cfg, Default())
	}
	want := map[string]string{
		"FERRY_ADDR": "127.0.0.1:8080", "FERRY_DATA_DIR": "ferry-data", "FERRY_DATABASE_URL": "", "FERRY_KEK": "",
		"FERRY_BASE_URL": "http://127.0.0.1:8080", "FERRY_LOG_FORMAT": "auto", "FERRY_LOG_LEVEL": "info", "FERRY_REGION": "us-west-2",
		"FERRY_CONNECT_ALLOWED_HOSTS": "*.atlassian.net,*.jira.com,*.jira-dev.com", "FERRY_EGRESS_ALLOW_LOOPBACK": "false",
		"FERRY_ADDON_KEY": "ferry-bi-connector", "FERRY_REQUEST_LOG_DAYS": "60", "FERRY_EXPORT_WORKERS": "32",
		"FERRY_TOKEN_MAX_DAYS": "365", "FERRY_SHUTDOWN_TIMEOUT": "15s", "FERRY_METRICS_ADDR": "127.0.0.1:9464",
		"FERRY_CONSOLE_ADDR": "127.0.0.1:8081", "FERRY_CONSOLE_URL": "", "FERRY_CONSOLE_OIDC_ISSUER": "", "FERRY_AUDIT_CHECKPOINT_DIR": "",
		"FERRY_CONNECT_INSTALL_KEYS_URL": "https://connect-install-keys.atlassian.com",
		"FERRY_CONNECT_OAUTH_URL":        "https://oauth-2-authorization-server.services.atlassian.com",
		"FERRY_CONNECT_JS_URL":           "https://connect-cdn.atl-paas.net/all.js",
		"FERRY_BACKUP_EVERY":             "24h0m0s", "FERRY_BACKUP_DIR": "", "FERRY_BACKUP_RECIPIENTS": "",
		"FERRY_BACKUP_KEEP_DAILY": "14", "FERRY_BACKUP_KEEP_WEEKLY": "8", "FERRY_BACKUP_KEEP_MONTHLY": "12",
		"FERRY_BACKUP_KEY_DAYS": "7", "FERRY_S3_ACCESS_KEY_ID": "", "FERRY_S3_SECRET_ACCESS_KEY": "",
	}
	got := dump(&cfg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("default %s = %q, want %q", k, got[k], v)
		}
	}
	if cfg.SQLitePath() != filepath.Join("ferry-data", "ferry.db") || cfg.KeyFilePath() != filepath.Join("ferry-data", "kek.json") || cfg.UsesPostgres() {
		t.Errorf("default paths: %s %s postgres=%v", cfg.SQLitePath(), cfg.KeyFilePath(), cfg.UsesPostgres())
	}
}

func dump(c *Config) map[string]string {
	var b bytes.Buffer
	c.Redacted(&b)
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		out[k] = v
	}
	return out
}

// Every variable, generated from the list Load reads: its value as printed
// reads back to the same configuration, from the environment and from its
// flag. A variable added later is covered without a new case.
func TestEveryVariableRoundTrips(t *testing.T) {
	base := map[string]string{"FERRY_TLS_CERT": "/etc/ferry/tls.crt", "FERRY_TLS_KEY": "/etc/ferry/tls.key",
		"FERRY_KEK": "aws-kms://arn:aws:kms:us-west-2:111122223333:key/k1", "FERRY_KMS_ENDPOINT": "https://kms.us-west-2.amazonaws.com",
		"FERRY_DATABASE_URL": "postgres://ferry:pw@db.internal:5432/ferry", "FERRY_SENTRY_UPSTREAM_DSN": "https://k@o1.ingest.sentry.io/1",
		"FERRY_ERRORS_PUBLIC_KEY": "0123456789abcdef0123456789abcdef"}
	want, err := load(t, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields() {
		v := f.get(&want)
		env := map[string]string{}
		for k, x := range base {
			env[k] = x
		}
		env[f.env] = v
		if got, err := load(t, env); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s=%q from the environment: %v, %+v", f.env, v, err, got)
		}
		if v == "" {
			continue
		}
		if got, err := load(t, base, "--"+f.flag, v); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("--%s %q: %v, %+v", f.flag, v, err, got)
		}
	}
}

// Valid values change exactly their setting.
func TestValidValues(t *testing.T) {
	cases := []struct {
		env   map[string]string
		check func(Config) bool
	}{
		{map[string]string{"FERRY_ADDR": "0.0.0.0:443"}, func(c Config) bool { return c.Addr == "0.0.0.0:443" }},
		{map[string]string{"FERRY_ADDR": "[::1]:0"}, func(c Config) bool { return c.Addr == "[::1]:0" }},
		{map[string]string{"FERRY_DATA_DIR": "/var/lib/ferry?#%"}, func(c Config) bool { return c.SQLitePath() == "/var/lib/ferry?#%/ferry.db" }},
		{map[string]string{"FERRY_DATABASE_URL": "postgresql://u@h/db"}, func(c Config) bool { return c.UsesPostgres() }},
		{map[string]string{"FERRY_DATABASE_URL": "postgres:///db?host=/var/run/postgresql"}, func(c Config) bool { return c.UsesPostgres() }},
		{map[string]string{"FERRY_BASE_URL": "https://ferry.example.com"}, func(c Config) bool { return c.BaseURL == "https://ferry.example.com" }},
		{map[string]string{"FERRY_KEK": "aws-kms://arn:aws:kms:us-west-2:111122223333:key/x"}, func(c Config) bool { return c.KEK != "" }},
		{map[string]string{"FERRY_KEK": "aws-kms://arn:aws:kms:us-west-2:111122223333:key/x", "FERRY_KMS_ENDPOINT": "http://127.0.0.1:4566"}, func(c Config) bool { return c.KMSEndpoint == "http://127.0.0.1:4566" }},
		{map[string]string{"FERRY_TLS_CERT": "c.pem", "FERRY_TLS_KEY": "k.pem"}, func(c Config) bool { return c.TLSCert == "c.pem" && c.TLSKey == "k.pem" }},
		{map[string]string{"FERRY_LOG_FORMAT": "json"}, func(c Config) bool { return c.LogFormat == "json" }},
		{map[string]string{"FERRY_LOG_LEVEL": "debug"}, func(c Config) bool { return c.LogLevel == "debug" }},
		{map[string]string{"FERRY_REGION": "eu-central-1"}, func(c Config) bool { return c.Region == "eu-central-1" }},
		{map[string]string{"FERRY_CONNECT_ALLOWED_HOSTS": " A.Example.com , *.b.example:8443 ,"}, func(c Config) bool {
			return reflect.DeepEqual(c.ConnectAllowedHosts, []string{"a.example.com", "*.b.example:8443"})
		}},
		{map[string]string{"FERRY_CONNECT_INSTALL_KEYS_URL": "http://127.0.0.1:9/keys"}, func(c Config) bool { return c.InstallKeysURL == "http://127.0.0.1:9/keys" }},
		{map[string]string{"FERRY_CONNECT_OAUTH_URL": "http://127.0.0.1:9"}, func(c Config) bool { return c.OAuthURL == "http://127.0.0.1:9" }},
		{map[string]string{"FERRY_CONNECT_JS_URL": "https://cdn.example/all.js"}, func(c Config) bool { return c.ConnectJSURL == "https://cdn.example/all.js" }},
		{map[string]string{"FERRY_EGRESS_ALLOW_LOOPBACK": "true"}, func(c Config) bool { return c.AllowLoopback }},
		{map[string]string{"FERRY_EGRESS_ALLOW_LOOPBACK": " 0 "}, func(c Config) bool { return !c.AllowLoopback }},
		{map[string]string{"FERRY_ADDON_KEY": "my-app.key_1"}, func(c Config) bool { return c.AddonKey == "my-app.key_1" }},
		{map[string]string{"FERRY_REQUEST_LOG_DAYS": "1"}, func(c Config) bool { return c.RequestLogDays == 1 }},
		{map[string]string{"FERRY_REQUEST_LOG_DAYS": " 60 "}, func(c Config) bool { return c.RequestLogDays == 60 }},
		{map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": "https://k@o1.ingest.sentry.io/1"}, func(c Config) bool { return c.SentryUpstreamDSN != "" }},
		{map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": "http://k@127.0.0.1:9000/sentry/42/"}, func(c Config) bool { return c.SentryUpstreamDSN != "" }},
		{map[string]string{"FERRY_ERRORS_PUBLIC_KEY": "0123456789abcdef0123456789abcdef"}, func(c Config) bool { return c.ErrorsPublicKey == "0123456789abcdef0123456789abcdef" }},
		{map[string]string{"FERRY_ERRORS_PROJECT_ID": "4505"}, func(c Config) bool { return c.ErrorsProjectID == "4505" }},
		{map[string]string{"FERRY_ERRORS_RETENTION_DAYS": "365"}, func(c Config) bool { return c.ErrorsRetentionDays == 365 }},
		{map[string]string{"FERRY_ERRORS_RATE": "1"}, func(c Config) bool { return c.ErrorsRate == 1 }},
		{map[string]string{"FERRY_S3_ENDPOINT": "https://s3.us-west-2.amazonaws.com", "FERRY_S3_BUCKET": "b", "FERRY_S3_REGION": "us-west-2"}, func(c Config) bool {
			return c.S3Endpoint != "" && c.S3Bucket == "b" && c.S3Region == "us-west-2"
		}},
		{map[string]string{"FERRY_SMTP_ADDR": "email-smtp.us-west-2.amazonaws.com:587"}, func(c Config) bool { return c.SMTPAddr != "" }},
		{map[string]string{"FERRY_EXPORT_WORKERS": "64"}, func(c Config) bool { return c.ExportWorkers == 64 }},
		{map[string]string{"FERRY_TOKEN_MAX_DAYS": "3650"}, func(c Config) bool { return c.TokenMaxDays == 3650 }},
		{map[string]string{"FERRY_SHUTDOWN_TIMEOUT": "90s"}, func(c Config) bool { return c.ShutdownTimeout == 90*time.Second }},
		{map[string]string{"FERRY_METRICS_ADDR": "off"}, func(c Config) bool { return c.MetricsAddr == "off" }},
		{map[string]string{"FERRY_BACKUP_EVERY": "6h"}, func(c Config) bool { return c.BackupEvery == 6*time.Hour }},
		{map[string]string{"FERRY_BACKUP_EVERY": "15m"}, func(c Config) bool { return c.BackupEvery == 15*time.Minute }},
		{map[string]string{"FERRY_BACKUP_DIR": "/mnt/backups"}, func(c Config) bool { return c.BackupDir == "/mnt/backups" && c.BackupPath() == "/mnt/backups" }},
		{map[string]string{"FERRY_BACKUP_RECIPIENTS": testRecipient + ", " + testRecipient2}, func(c Config) bool {
			return len(c.BackupRecipients) == 2 && c.BackupRecipients[1] == testRecipient2
		}},
		{map[string]string{"FERRY_BACKUP_KEEP_DAILY": "30", "FERRY_BACKUP_KEEP_WEEKLY": "0", "FERRY_BACKUP_KEEP_MONTHLY": "24"}, func(c Config) bool {
			return c.BackupKeepDaily == 30 && c.BackupKeepWeekly == 0 && c.BackupKeepMonthly == 24
		}},
		{map[string]string{"FERRY_BACKUP_KEY_DAYS": "1"}, func(c Config) bool { return c.BackupKeyDays == 1 }},
		{map[string]string{"FERRY_S3_ACCESS_KEY_ID": "AKIAEXAMPLE"}, func(c Config) bool { return c.S3AccessKeyID == "AKIAEXAMPLE" }},
		{map[string]string{"FERRY_METRICS_ADDR": "0.0.0.0:9100"}, func(c Config) bool { return c.MetricsAddr == "0.0.0.0:9100" }},
		{map[string]string{"FERRY_CONSOLE_ADDR": "[::1]:0"}, func(c Config) bool { return c.ConsoleAddr == "[::1]:0" && c.ConsoleBaseURL() == "http://[::1]:0" }},
		{map[string]string{"FERRY_CONSOLE_ADDR": "0.0.0.0:8443", "FERRY_TLS_CERT": "c.pem", "FERRY_TLS_KEY": "k.pem"}, func(c Config) bool {
			return c.ConsoleBaseURL() == "https://0.0.0.0:8443"
		}},
		{map[string]string{"FERRY_CONSOLE_ADDR": "10.0.0.5:8081", "FERRY_CONSOLE_URL": "https://console.example.com/"}, func(c Config) bool {
			return c.ConsoleBaseURL() == "https://console.example.com"
		}},
		{map[string]string{"FERRY_CONSOLE_OIDC_ISSUER": "https://login.example.com", "FERRY_CONSOLE_OIDC_CLIENT_ID": "ferry"}, func(c Config) bool {
			return c.ConsoleOIDCIssuer != "" && c.ConsoleOIDCClientID == "ferry"
		}},
		{map[string]string{"FERRY_CONSOLE_OIDC_ISSUER": "http://127.0.0.1:5556", "FERRY_CONSOLE_OIDC_CLIENT_ID": "ferry", "FERRY_EGRESS_ALLOW_LOOPBACK": "true"}, func(c Config) bool {
			return c.ConsoleOIDCIssuer == "http://127.0.0.1:5556"
		}},
		{map[string]string{"FERRY_AUDIT_CHECKPOINT_DIR": "/srv/audit"}, func(c Config) bool { return c.CheckpointDir() == "/srv/audit" }},
		{map[string]string{"FERRY_DATA_DIR": "/var/lib/ferry"}, func(c Config) bool { return c.CheckpointDir() == "/var/lib/ferry/audit-checkpoints" }},
		{map[string]string{"FERRY_TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::ffff:198.51.100.1,::ffff:203.0.113.0/120"}, func(c Config) bool {
			return fmt.Sprint(c.TrustedProxies) == "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32 198.51.100.1/32 203.0.113.0/24]"
		}},
		{map[string]string{"FERRY_FEED_CONCURRENCY_PER_SITE": "1"}, func(c Config) bool { return c.FeedConcurrencySite == 1 }},
		{map[string]string{"FERRY_FORGE_APP_ID": "ari:cloud:ecosystem::app/0b5d9c54-1111-4222-8333-444455556666"}, func(c Config) bool {
			return c.ForgeAppID == "ari:cloud:ecosystem::app/0b5d9c54-1111-4222-8333-444455556666"
		}},
		{map[string]string{"FERRY_FORGE_JWKS_URL": "http://127.0.0.1:9/forge/jwks.json"}, func(c Config) bool { return c.ForgeJWKSURL == "http://127.0.0.1:9/forge/jwks.json" }},
		{map[string]string{"FERRY_FORGE_GRAPHQL_URL": "http://127.0.0.1:9/graphql"}, func(c Config) bool { return c.ForgeGraphQLURL == "http://127.0.0.1:9/graphql" }},
		{map[string]string{"FERRY_FORGE_STORAGE_URL": "http://127.0.0.1:9/kvs"}, func(c Config) bool { return c.ForgeStorageURL == "http://127.0.0.1:9/kvs" }},
		{map[string]string{"FERRY_FORGE_LICENSE_MAX_AGE": "2d"}, func(c Config) bool { return c.ForgeLicenseMaxAge == 48*time.Hour }},
		{map[string]string{"FERRY_FORGE_REGION_URLS": " EU=https://eu.ferry.example , us=https://us.ferry.example"}, func(c Config) bool {
			return reflect.DeepEqual(c.ForgeRegionURLs, []string{"EU=https://eu.ferry.example", "us=https://us.ferry.example"})
		}},
		{nil, func(c Config) bool {
			return c.ForgeAppID == "" && c.ForgeJWKSURL == "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json" &&
				c.ForgeGraphQLURL == "https://api.atlassian.com/graphql" && c.ForgeLicenseMaxAge == 24*time.Hour
		}},
	}
	for _, c := range cases {
		cfg, err := load(t, c.env)
		if err != nil || !c.check(cfg) {
			t.Errorf("%v: %v, %+v", c.env, err, cfg)
		}
	}
}

// Invalid values fail with an *Error naming the variable (or the flag), in
// one line.
func TestInvalidValuesNameTheVariable(t *testing.T) {
	kek := "aws-kms://arn:aws:kms:us-west-2:111122223333:key/x"
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"FERRY_ADDR": "localhost"}, nil, "FERRY_ADDR"},
		{map[string]string{"FERRY_ADDR": "127.0.0.1:65536"}, nil, "FERRY_ADDR"},
		{map[string]string{"FERRY_ADDR": "127.0.0.1:http"}, nil, "FERRY_ADDR"},
		{nil, []string{"--data-dir", ""}, "FERRY_DATA_DIR"},
		{map[string]string{"FERRY_DATABASE_URL": "mysql://u@h/db"}, nil, "FERRY_DATABASE_URL"},
		{map[string]string{"FERRY_DATABASE_URL": "postgres:///db"}, nil, "FERRY_DATABASE_URL"},
		{map[string]string{"FERRY_DATABASE_URL": "postgres://h/%zz"}, nil, "FERRY_DATABASE_URL"},
		{map[string]string{"FERRY_BASE_URL": "ftp://ferry.example"}, nil, "FERRY_BASE_URL"},
		{map[string]string{"FERRY_BASE_URL": "https://"}, nil, "FERRY_BASE_URL"},
		{map[string]string{"FERRY_KEK": "file:///etc/kek"}, nil, "FERRY_KEK"},
		{map[string]string{"FERRY_KMS_ENDPOINT": "https://kms.us-west-2.amazonaws.com"}, nil, "FERRY_KMS_ENDPOINT"},
		{map[string]string{"FERRY_KEK": kek, "FERRY_KMS_ENDPOINT": "kms.local"}, nil, "FERRY_KMS_ENDPOINT"},
		{map[string]string{"FERRY_TLS_CERT": "c.pem"}, nil, "FERRY_TLS_KEY"},
		{map[string]string{"FERRY_TLS_KEY": "k.pem"}, nil, "FERRY_TLS_CERT"},
		{map[string]string{"FERRY_LOG_FORMAT": "xml"}, nil, "FERRY_LOG_FORMAT"},
		{map[string]string{"FERRY_LOG_LEVEL": "trace"}, nil, "FERRY_LOG_LEVEL"},
		{map[string]string{"FERRY_CONNECT_ALLOWED_HOSTS": " , "}, nil, "FERRY_CONNECT_ALLOWED_HOSTS"},
		{map[string]string{"FERRY_CONNECT_INSTALL_KEYS_URL": "javascript:alert(1)"}, nil, "FERRY_CONNECT_INSTALL_KEYS_URL"},
		{map[string]string{"FERRY_CONNECT_OAUTH_URL": "not a url"}, nil, "FERRY_CONNECT_OAUTH_URL"},
		{map[string]string{"FERRY_CONNECT_JS_URL": "data:text/javascript,x"}, nil, "FERRY_CONNECT_JS_URL"},
		{map[string]string{"FERRY_EGRESS_ALLOW_LOOPBACK": "yes please"}, nil, "FERRY_EGRESS_ALLOW_LOOPBACK"},
		{map[string]string{"FERRY_ADDON_KEY": "a/b"}, nil, "FERRY_ADDON_KEY"},
		{map[string]string{"FERRY_ADDON_KEY": "a b"}, nil, "FERRY_ADDON_KEY"},
		{map[string]string{"FERRY_REQUEST_LOG_DAYS": "61"}, nil, "FERRY_REQUEST_LOG_DAYS"},
		{map[string]string{"FERRY_REQUEST_LOG_DAYS": "0"}, nil, "FERRY_REQUEST_LOG_DAYS"},
		{map[string]string{"FERRY_REQUEST_LOG_DAYS": "sixty"}, nil, "FERRY_REQUEST_LOG_DAYS"},
		{map[string]string{"FERRY_EXPORT_WORKERS": "65"}, nil, "FERRY_EXPORT_WORKERS"},
		{map[string]string{"FERRY_EXPORT_WORKERS": "-1"}, nil, "FERRY_EXPORT_WORKERS"},
		{map[string]string{"FERRY_TOKEN_MAX_DAYS": "3651"}, nil, "FERRY_TOKEN_MAX_DAYS"},
		{map[string]string{"FERRY_SHUTDOWN_TIMEOUT": "0s"}, nil, "FERRY_SHUTDOWN_TIMEOUT"},
		{map[string]string{"FERRY_SHUTDOWN_TIMEOUT": "soon"}, nil, "FERRY_SHUTDOWN_TIMEOUT"},
		{map[string]string{"FERRY_METRICS_ADDR": "9464"}, nil, "FERRY_METRICS_ADDR"},
		{map[string]string{"FERRY_BACKUP_EVERY": "25h"}, nil, "FERRY_BACKUP_EVERY"},
		{map[string]string{"FERRY_BACKUP_EVERY": "168h"}, nil, "FERRY_BACKUP_EVERY"},
		{map[string]string{"FERRY_BACKUP_EVERY": "14m"}, nil, "FERRY_BACKUP_EVERY"},
		{map[string]string{"FERRY_BACKUP_EVERY": "daily"}, nil, "FERRY_BACKUP_EVERY"},
		{map[string]string{"FERRY_BACKUP_RECIPIENTS": "age1notarecipient"}, nil, "FERRY_BACKUP_RECIPIENTS"},
		{map[string]string{"FERRY_BACKUP_RECIPIENTS": testRecipient + ",AGE-SECRET-KEY-1QQQ"}, nil, "FERRY_BACKUP_RECIPIENTS"},
		{map[string]string{"FERRY_BACKUP_KEEP_DAILY": "0"}, nil, "FERRY_BACKUP_KEEP_DAILY"},
		{map[string]string{"FERRY_BACKUP_KEEP_WEEKLY": "-1"}, nil, "FERRY_BACKUP_KEEP_WEEKLY"},
		{map[string]string{"FERRY_BACKUP_KEEP_MONTHLY": "many"}, nil, "FERRY_BACKUP_KEEP_MONTHLY"},
		{map[string]string{"FERRY_BACKUP_KEY_DAYS": "31"}, nil, "FERRY_BACKUP_KEY_DAYS"},
		{nil, []string{"--backup-every", "48h"}, "--backup-every"},
		{map[string]string{"FERRY_ADDR": "127.0.0.1:9000", "FERRY_METRICS_ADDR": "127.0.0.1:9000"}, nil, "FERRY_METRICS_ADDR"},
		{map[string]string{"FERRY_CONSOLE_ADDR": "0.0.0.0:8081"}, nil, "FERRY_CONSOLE_ADDR"},
		{map[string]string{"FERRY_FORGE_APP_ID": "0b5d9c54-1111-4222-8333-444455556666"}, nil, "FERRY_FORGE_APP_ID"},
		{map[string]string{"FERRY_FORGE_APP_ID": "ari:cloud:ecosystem::installation/0b5d9c54-1111-4222-8333-444455556666"}, nil, "FERRY_FORGE_APP_ID"},
		{map[string]string{"FERRY_FORGE_JWKS_URL": "file:///jwks.json"}, nil, "FERRY_FORGE_JWKS_URL"},
		{map[string]string{"FERRY_FORGE_GRAPHQL_URL": "api.atlassian.com/graphql"}, nil, "FERRY_FORGE_GRAPHQL_URL"},
		{nil, []string{"--forge-storage-url", "kvs"}, "FERRY_FORGE_STORAGE_URL"},
		{map[string]string{"FERRY_FORGE_LICENSE_MAX_AGE": "10m"}, nil, "FERRY_FORGE_LICENSE_MAX_AGE"},
		{map[string]string{"FERRY_FORGE_REGION_URLS": "https://eu.ferry.example"}, nil, "FERRY_FORGE_REGION_URLS"},
		{map[string]string{"FERRY_FORGE_REGION_URLS": "MARS=https://mars.ferry.example"}, nil, "FERRY_FORGE_REGION_URLS"},
		{map[string]string{"FERRY_FORGE_REGION_URLS": "EU=https://a.example,EU=https://b.example"}, nil, "FERRY_FORGE_REGION_URLS"},
		{map[string]string{"FERRY_FORGE_REGION_URLS": "EU=ftp://eu.ferry.example"}, nil, "FERRY_FORGE_REGION_URLS"},
		{map[string]string{"FERRY_CONSOLE_ADDR": "8081"}, nil, "FERRY_CONSOLE_ADDR"},
		{map[string]string{"FERRY_CONSOLE_URL": "console.example.com"}, nil, "FERRY_CONSOLE_URL"},
		{map[string]string{"FERRY_CONSOLE_OIDC_ISSUER": "https://login.example.com"}, nil, "FERRY_CONSOLE_OIDC_ISSUER"},
		{map[string]string{"FERRY_CONSOLE_OIDC_CLIENT_ID": "ferry"}, nil, "FERRY_CONSOLE_OIDC_ISSUER"},
		{map[string]string{"FERRY_CONSOLE_OIDC_ISSUER": "http://login.example.com", "FERRY_CONSOLE_OIDC_CLIENT_ID": "ferry"}, nil, "FERRY_CONSOLE_OIDC_ISSUER"},
		{map[string]string{"FERRY_CONSOLE_OIDC_ISSUER": "http://127.0.0.1:5556", "FERRY_CONSOLE_OIDC_CLIENT_ID": "ferry"}, nil, "FERRY_CONSOLE_OIDC_ISSUER"},
		{map[string]string{"FERRY_SENTRY_DSN": "https://k@o1.ingest.sentry.io/1"}, nil, "FERRY_SENTRY_DSN"},
		{map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": "https://o1.ingest.sentry.io/1"}, nil, "FERRY_SENTRY_UPSTREAM_DSN"},
		{map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": "https://k@o1.ingest.sentry.io/project"}, nil, "FERRY_SENTRY_UPSTREAM_DSN"},
		{map[string]string{"FERRY_SENTRY_UPSTREAM_DSN": "ftp://k@o1.ingest.sentry.io/1"}, nil, "FERRY_SENTRY_UPSTREAM_DSN"},
		{map[string]string{"FERRY_ERRORS_PUBLIC_KEY": "short"}, nil, "FERRY_ERRORS_PUBLIC_KEY"},
		{map[string]string{"FERRY_ERRORS_PUBLIC_KEY": "0123456789abcdef0123456789abcde!"}, nil, "FERRY_ERRORS_PUBLIC_KEY"},
		{map[string]string{"FERRY_ERRORS_PROJECT_ID": "browser"}, nil, "FERRY_ERRORS_PROJECT_ID"},
		{map[string]string{"FERRY_ERRORS_RETENTION_DAYS": "0"}, nil, "FERRY_ERRORS_RETENTION_DAYS"},
		{map[string]string{"FERRY_ERRORS_RATE": "fast"}, nil, "FERRY_ERRORS_RATE"},
		{map[string]string{"FERRY_TRUSTED_PROXIES": "10.0.0.1/8"}, nil, "FERRY_TRUSTED_PROXIES"},
		{map[string]string{"FERRY_TRUSTED_PROXIES": "proxy.internal"}, nil, "FERRY_TRUSTED_PROXIES"},
		{map[string]string{"FERRY_TRUSTED_PROXIES": "10.0.0.0/33"}, nil, "FERRY_TRUSTED_PROXIES"},
		{map[string]string{"FERRY_TRUSTED_PROXIES": "fe80::1%eth0"}, nil, "FERRY_TRUSTED_PROXIES"},
		{map[string]string{"FERRY_FEED_CONCURRENCY_PER_SITE": "0"}, nil, "FERRY_FEED_CONCURRENCY_PER_SITE"},
		{map[string]string{"FERRY_FEED_CONCURRENCY_PER_SITE": "many"}, nil, "FERRY_FEED_CONCURRENCY_PER_SITE"},
		{nil, []string{"--request-log-days", "90"}, "--request-log-days"},
		{nil, []string{"--colour"}, "flags"},
		{nil, []string{"-\r"}, "flags"},
		{nil, []string{"--addr\n=x"}, "flags"},
	}
	for _, c := range cases {
		_, err := load(t, c.env, c.args...)
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != c.want || strings.ContainsAny(err.Error(), "\r\n") || !IsConfigError(err) {
			t.Errorf("%v %v: err = %v, want a one-line *Error for %s", c.env, c.args, err, c.want)
		}
	}
}

// Secrets can come from a file named by VAR_FILE (surrounding whitespace
// trimmed); setting both, or naming an unreadable file, is an error naming
// VAR_FILE; the value never appears in the configuration dump.
func TestSecretFileVariants(t *testing.T) {
	secrets := map[string]string{
		"FERRY_DATABASE_URL":               "postgres://ferry:s3cret-pw@db.internal:5432/ferry",
		"FERRY_SENTRY_UPSTREAM_DSN":        "https://s3cretkey@o1.ingest.sentry.io/1",
		"FERRY_CONSOLE_OIDC_CLIENT_SECRET": "s3cret-oidc-client-secret",
		"FERRY_S3_SECRET_ACCESS_KEY":       "s3cret/AbCdEf0123456789+xyz",
	}
	n := 0
	for _, f := range fields() {
		if !f.secret {
			continue
		}
		n++
		value, ok := secrets[f.env]
		if !ok {
			t.Errorf("secret %s has no case here: add one", f.env)
			continue
		}
		path := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(path, []byte("\n  "+value+"  \n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := load(t, map[string]string{f.env + "_FILE": path})
		if err != nil || f.get(&cfg) != value {
			t.Errorf("%s_FILE: %v, got %q", f.env, err, f.get(&cfg))
		}
		var b bytes.Buffer
		cfg.Redacted(&b)
		if strings.Contains(b.String(), "s3cret") {
			t.Errorf("%s: the dump shows the secret:\n%s", f.env, b.String())
		}
		for _, bad := range []map[string]string{
			{f.env + "_FILE": path, f.env: value},
			{f.env + "_FILE": filepath.Join(t.TempDir(), "missing")},
			{f.env + "_FILE": t.TempDir()}, // a directory
		} {
			_, err := load(t, bad)
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != f.env+"_FILE" || strings.Contains(err.Error(), value) {
				t.Errorf("%v: err = %v, want an *Error for %s_FILE without the secret", bad, err, f.env)
			}
		}
	}
	if n < 2 {
		t.Fatalf("only %d secret variables found", n)
	}
	// A value read from a file is validated like one from the environment.
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, []byte("mysql://u@h/db"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, map[string]string{"FERRY_DATABASE_URL_FILE": path}); err == nil || !strings.HasPrefix(err.Error(), "FERRY_DATABASE_URL") {
		t.Errorf("invalid value from a file: %v", err)
	}
}

// --help is not an error of the configuration; Usage lists every variable.
func TestHelpAndUsage(t *testing.T) {
	if _, err := load(t, nil, "--help"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	var b bytes.Buffer
	Usage(&b)
	for _, f := range fields() {
		if !strings.Contains(b.String(), f.env) || !strings.Contains(b.String(), "--"+f.flag) {
			t.Errorf("usage lacks %s / --%s", f.env, f.flag)
		}
	}
}

// Two well-formed age recipients (public keys; no identity exists for them).
const (
	testRecipient  = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	testRecipient2 = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg"
)

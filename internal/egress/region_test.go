package egress

import (
	"errors"
	"strings"
	"testing"
)

const testKey = "aws-kms://arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestCheckRegion(t *testing.T) {
	base := Config{Region: "us-west-2"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = no error; otherwise the whole single-line message
	}{
		{"region only", func(c *Config) {}, ""},
		{"gov region", func(c *Config) { c.Region = "us-gov-west-1" }, ""},
		{"missing region", func(c *Config) { c.Region = "" },
			"FERRY_REGION: not set; Ferry must know its hosting region (e.g. us-west-2 for Oregon, USA)"},
		{"region as a place name", func(c *Config) { c.Region = "Oregon" },
			`FERRY_REGION: "Oregon" is not an AWS region name (e.g. us-west-2)`},
		{"region upper case", func(c *Config) { c.Region = "US-WEST-2" },
			`FERRY_REGION: "US-WEST-2" is not an AWS region name (e.g. us-west-2)`},
		{"kms key in region", func(c *Config) { c.KMSKeyURI = testKey }, ""},
		{"kms alias in region", func(c *Config) {
			c.KMSKeyURI = "aws-kms://arn:aws:kms:us-west-2:111122223333:alias/ferry-kek"
		}, ""},
		{"kms key elsewhere", func(c *Config) { c.KMSKeyURI = strings.Replace(testKey, "us-west-2", "eu-west-1", 1) },
			"FERRY_KEK: KMS key is in eu-west-1, but FERRY_REGION is us-west-2"},
		{"kms key without region", func(c *Config) { c.KMSKeyURI = strings.Replace(testKey, "us-west-2", "", 1) },
			"FERRY_KEK: KMS key ARN names no region; want aws-kms://arn:aws:kms:<region>:<account>:key/<id>"},
		{"kms key not an arn", func(c *Config) { c.KMSKeyURI = "aws-kms://1234abcd" },
			"FERRY_KEK: KMS key URI is not a KMS key ARN; want aws-kms://arn:aws:kms:<region>:<account>:key/<id>"},
		{"kms key other cloud", func(c *Config) { c.KMSKeyURI = "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k" },
			`FERRY_KEK: KMS key URI scheme "gcp-kms" cannot be placed in a region; want aws-kms://arn:aws:kms:<region>:<account>:key/<id>`},
		{"kms endpoint elsewhere", func(c *Config) { c.KMSKeyURI = testKey; c.KMSEndpoint = "https://kms.us-east-1.amazonaws.com" },
			"FERRY_KMS_ENDPOINT: endpoint kms.us-east-1.amazonaws.com is in us-east-1, but FERRY_REGION is us-west-2"},
		{"kms endpoint alone elsewhere", func(c *Config) { c.KMSEndpoint = "https://kms.eu-west-1.amazonaws.com" },
			"FERRY_KMS_ENDPOINT: endpoint kms.eu-west-1.amazonaws.com is in eu-west-1, but FERRY_REGION is us-west-2"},
		{"kms loopback stand-in", func(c *Config) {
			c.AllowLoopback = true
			c.KMSKeyURI = testKey
			c.KMSEndpoint = "http://127.0.0.1:4566"
		}, ""},
		{"bucket defaults to region", func(c *Config) { c.S3Bucket = "ferry-backups" }, ""},
		{"bucket region elsewhere", func(c *Config) { c.S3Bucket = "ferry-backups"; c.S3Region = "eu-central-1" },
			"FERRY_S3_REGION: bucket is in eu-central-1, but FERRY_REGION is us-west-2"},
		{"regional endpoint", func(c *Config) { c.S3Bucket = "b"; c.S3Endpoint = "https://s3.us-west-2.amazonaws.com" }, ""},
		{"virtual-hosted endpoint", func(c *Config) { c.S3Bucket = "b"; c.S3Endpoint = "https://b.s3.us-west-2.amazonaws.com" }, ""},
		{"dualstack endpoint", func(c *Config) { c.S3Endpoint = "https://s3.dualstack.us-west-2.amazonaws.com" }, ""},
		{"legacy dash endpoint", func(c *Config) { c.S3Endpoint = "https://s3-us-west-2.amazonaws.com" }, ""},
		{"endpoint elsewhere", func(c *Config) { c.S3Bucket = "b"; c.S3Endpoint = "https://b.s3.eu-west-1.amazonaws.com" },
			"FERRY_S3_ENDPOINT: endpoint b.s3.eu-west-1.amazonaws.com is in eu-west-1, but FERRY_REGION is us-west-2"},
		{"global endpoint", func(c *Config) { c.S3Bucket = "b"; c.S3Endpoint = "https://s3.amazonaws.com" },
			"FERRY_S3_ENDPOINT: s3.amazonaws.com names no region; use s3.<region>.amazonaws.com"},
		{"not aws", func(c *Config) { c.S3Bucket = "b"; c.S3Endpoint = "https://storage.example.com" },
			"FERRY_S3_ENDPOINT: storage.example.com is not an AWS endpoint, so its region cannot be verified"},
		{"plain http", func(c *Config) { c.S3Bucket = "b"; c.S3Endpoint = "http://s3.us-west-2.amazonaws.com" },
			"FERRY_S3_ENDPOINT: must be an https:// URL (http:// only for loopback with FERRY_EGRESS_ALLOW_LOOPBACK)"},
		{"loopback without permission", func(c *Config) { c.S3Bucket = "b"; c.S3Endpoint = "https://127.0.0.1:9000" },
			"FERRY_S3_ENDPOINT: egress: destination refused: 127.0.0.1 is a loopback address"},
		{"loopback S3 server in tests", func(c *Config) {
			c.AllowLoopback = true
			c.S3Bucket, c.S3Endpoint, c.S3Region = "b", "http://127.0.0.1:9000", "us-west-2"
		}, ""},
		{"loopback S3 server claiming another region", func(c *Config) {
			c.AllowLoopback = true
			c.S3Bucket, c.S3Endpoint, c.S3Region = "b", "http://127.0.0.1:9000", "us-east-1"
		}, "FERRY_S3_REGION: bucket is in us-east-1, but FERRY_REGION is us-west-2"},
		{"private S3 endpoint even with loopback", func(c *Config) {
			c.AllowLoopback = true
			c.S3Bucket, c.S3Endpoint = "b", "http://10.0.0.5:9000"
		}, "FERRY_S3_ENDPOINT: must be an https:// URL (http:// only for loopback with FERRY_EGRESS_ALLOW_LOOPBACK)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			err := CheckRegion(cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckRegion: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckRegion = nil, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("CheckRegion =\n  %q\nwant\n  %q", err, tc.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConfigError", err)
			}
		})
	}
}

func TestCheckRegionReportsEveryProblem(t *testing.T) {
	err := CheckRegion(Config{
		Region:    "us-west-2",
		S3Bucket:  "b",
		S3Region:  "eu-west-1",
		KMSKeyURI: strings.Replace(testKey, "us-west-2", "eu-west-1", 1),
	})
	if err == nil {
		t.Fatal("CheckRegion = nil")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "FERRY_S3_REGION: ") || !strings.HasPrefix(lines[1], "FERRY_KEK: ") {
		t.Fatalf("want one line per setting, got %q", err)
	}
}

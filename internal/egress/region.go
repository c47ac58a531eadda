package egress

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

var regionRE = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-\d$`)

// CheckRegion is the start-up check of promise P8 (data location): the
// hosting region is set and well-formed, and every configured storage,
// backup and key-management endpoint is in it. Each problem is one line
// naming the setting; all problems are reported together.
func CheckRegion(cfg Config) error {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Region == "":
		return cfgErr(envRegion, "not set; Ferry must know its hosting region (e.g. us-west-2 for Oregon, USA)")
	case !regionRE.MatchString(cfg.Region):
		return cfgErr(envRegion, fmt.Sprintf("%q is not an AWS region name (e.g. us-west-2)", cfg.Region))
	}
	var errs []error
	if cfg.S3Bucket != "" || cfg.S3Endpoint != "" {
		if err := checkS3Region(cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.KMSKeyURI != "" || cfg.KMSEndpoint != "" {
		if err := checkKMSRegion(cfg); err != nil {
			errs = append(errs, err)
		}
	}
	for _, hp := range cfg.DatabaseHosts {
		host, _, _ := net.SplitHostPort(hp)
		if r, ok := rdsRegion(host); ok && r != cfg.Region {
			errs = append(errs, cfgErr(envDatabaseURL, fmt.Sprintf("database %s is in %s, but FERRY_REGION is %s", host, r, cfg.Region)))
		}
	}
	return errors.Join(errs...)
}

// rdsRegion reads the region of an Amazon RDS endpoint
// (NAME.ID.REGION.rds.amazonaws.com).
func rdsRegion(host string) (string, bool) {
	rest, ok := strings.CutSuffix(strings.ToLower(host), ".rds.amazonaws.com")
	if !ok {
		return "", false
	}
	labels := strings.Split(rest, ".")
	return labels[len(labels)-1], len(labels) >= 2
}

func checkS3Region(cfg Config) error {
	if !regionRE.MatchString(cfg.S3Region) {
		return cfgErr(envS3Region, fmt.Sprintf("%q is not an AWS region name (e.g. %s)", cfg.S3Region, cfg.Region))
	}
	if cfg.S3Region != cfg.Region {
		return cfgErr(envS3Region, fmt.Sprintf("bucket is in %s, but %s is %s", cfg.S3Region, envRegion, cfg.Region))
	}
	if cfg.S3Endpoint == "" {
		return nil // the AWS regional endpoint of S3Region is used
	}
	_, u, err := urlPattern(envS3Endpoint, cfg.S3Endpoint, cfg.AllowLoopback)
	if err != nil {
		return err
	}
	h, _ := ParseHost(u.Hostname())
	if isLoopbackHost(h) {
		// A local S3 server in tests: its region is whatever S3Region says,
		// which was checked above.
		if !cfg.AllowLoopback {
			return cfgErr(envS3Endpoint, "loopback endpoint needs FERRY_EGRESS_ALLOW_LOOPBACK (tests and demo only)")
		}
		return nil
	}
	region, err := awsEndpointRegion(h.Name, "s3")
	if err != nil {
		return cfgErr(envS3Endpoint, err.Error())
	}
	if region != cfg.Region {
		return cfgErr(envS3Endpoint, fmt.Sprintf("endpoint %s is in %s, but %s is %s", h.Name, region, envRegion, cfg.Region))
	}
	return nil
}

// awsEndpointRegion reads the region from an AWS endpoint host such as
// s3.us-west-2.amazonaws.com, bucket.s3.us-west-2.amazonaws.com,
// s3.dualstack.us-west-2.amazonaws.com, s3-us-west-2.amazonaws.com or
// kms.us-west-2.amazonaws.com.
func awsEndpointRegion(host, service string) (string, error) {
	rest, ok := strings.CutSuffix(host, ".amazonaws.com")
	if !ok {
		return "", fmt.Errorf("%s is not an AWS endpoint, so its region cannot be verified", host)
	}
	labels := strings.Split(rest, ".")
	hasService := false
	for _, l := range labels {
		if l == service || l == service+"-fips" || strings.HasPrefix(l, service+"-") {
			hasService = true
		}
	}
	if !hasService {
		return "", fmt.Errorf("%s is not an AWS %s endpoint", host, strings.ToUpper(service))
	}
	last := labels[len(labels)-1]
	if regionRE.MatchString(last) {
		return last, nil
	}
	if r, ok := strings.CutPrefix(last, service+"-"); ok && regionRE.MatchString(r) {
		return r, nil
	}
	return "", fmt.Errorf("%s names no region; use %s.<region>.amazonaws.com", host, service)
}

func checkKMSRegion(cfg Config) error {
	if cfg.KMSKeyURI != "" {
		region, err := kmsKeyRegion(cfg.KMSKeyURI)
		if err != nil {
			return cfgErr(envKEK, err.Error())
		}
		if region != cfg.Region {
			return cfgErr(envKEK, fmt.Sprintf("KMS key is in %s, but %s is %s", region, envRegion, cfg.Region))
		}
	}
	if cfg.KMSEndpoint == "" {
		return nil
	}
	_, u, err := urlPattern(envKMSEndpoint, cfg.KMSEndpoint, cfg.AllowLoopback)
	if err != nil {
		return err
	}
	h, _ := ParseHost(u.Hostname())
	if isLoopbackHost(h) {
		return nil // a local KMS stand-in; urlPattern already required AllowLoopback
	}
	er, err := awsEndpointRegion(h.Name, "kms")
	if err != nil {
		return cfgErr(envKMSEndpoint, err.Error())
	}
	if er != cfg.Region {
		return cfgErr(envKMSEndpoint, fmt.Sprintf("endpoint %s is in %s, but %s is %s", h.Name, er, envRegion, cfg.Region))
	}
	return nil
}

// kmsKeyRegion parses aws-kms://arn:<partition>:kms:<region>:<account>:key/<id>
// (or alias/<name>) and returns the region.
func kmsKeyRegion(uri string) (string, error) {
	const want = "want aws-kms://arn:aws:kms:<region>:<account>:key/<id>"
	arn, ok := strings.CutPrefix(uri, "aws-kms://")
	if !ok {
		scheme, _, _ := strings.Cut(uri, "://")
		if u, err := url.Parse(uri); err == nil && u.Scheme != "" {
			scheme = u.Scheme
		}
		return "", fmt.Errorf("KMS key URI scheme %q cannot be placed in a region; %s", scheme, want)
	}
	f := strings.Split(arn, ":")
	if len(f) != 6 || f[0] != "arn" || f[2] != "kms" {
		return "", errors.New("KMS key URI is not a KMS key ARN; " + want)
	}
	switch f[1] {
	case "aws", "aws-us-gov", "aws-cn":
	default:
		return "", fmt.Errorf("KMS key ARN has unknown partition %q; %s", f[1], want)
	}
	if f[3] == "" {
		return "", errors.New("KMS key ARN names no region; " + want)
	}
	if !regionRE.MatchString(f[3]) {
		return "", fmt.Errorf("KMS key ARN region %q is not an AWS region name", f[3])
	}
	if len(f[4]) != 12 || strings.Trim(f[4], "0123456789") != "" {
		return "", errors.New("KMS key ARN account is not a 12-digit AWS account id; " + want)
	}
	if !strings.HasPrefix(f[5], "key/") && !strings.HasPrefix(f[5], "alias/") || strings.HasSuffix(f[5], "/") {
		return "", errors.New("KMS key ARN resource is not key/<id> or alias/<name>; " + want)
	}
	return f[3], nil
}

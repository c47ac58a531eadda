package scrub

import (
	"regexp"
	"strings"
)

// NameVersion is a browser or operating system as the statement lets error
// tracking keep it: a name and a version, nothing else of the User-Agent.
type NameVersion struct {
	Name    string
	Version string
}

// browsers are tried in order: the first token found names the browser
// (Edge and Opera also say Chrome, Chrome also says Safari).
var browsers = []struct {
	token, name string
}{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edge/", "Edge"},
	{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"}, {"YaBrowser/", "Yandex Browser"},
	{"Vivaldi/", "Vivaldi"}, {"HeadlessChrome/", "HeadlessChrome"}, {"CriOS/", "Chrome Mobile iOS"},
	{"FxiOS/", "Firefox iOS"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
}

var (
	versionRe       = regexp.MustCompile(`^[0-9][0-9A-Za-z.]*`)
	safariVersionRe = regexp.MustCompile(`Version/([0-9][0-9.]*)`)
	windowsRe       = regexp.MustCompile(`Windows NT ([0-9.]+)`)
	macRe           = regexp.MustCompile(`Mac OS X ([0-9_.]+)`)
	iosRe           = regexp.MustCompile(`(?:iPhone|CPU) OS ([0-9_]+)`)
	androidRe       = regexp.MustCompile(`Android ([0-9.]+)`)
	crosRe          = regexp.MustCompile(`CrOS [A-Za-z0-9_]+ ([0-9.]+)`)
)

var windowsVersions = map[string]string{
	"10.0": "10", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista", "5.1": "XP",
}

// ParseUserAgent reads the browser and operating system from a User-Agent
// header. Either is zero when the header does not say.
func ParseUserAgent(ua string) (browser, os NameVersion) {
	for _, b := range browsers {
		if i := strings.Index(ua, b.token); i >= 0 {
			browser = NameVersion{Name: b.name, Version: versionRe.FindString(ua[i+len(b.token):])}
			break
		}
	}
	if browser.Name == "" && strings.Contains(ua, "Safari/") && strings.Contains(ua, "AppleWebKit/") {
		browser.Name = "Safari"
		if m := safariVersionRe.FindStringSubmatch(ua); m != nil {
			browser.Version = m[1]
		}
	}
	switch {
	case strings.Contains(ua, "Windows NT"):
		os.Name = "Windows"
		if m := windowsRe.FindStringSubmatch(ua); m != nil {
			os.Version = m[1]
			if v, ok := windowsVersions[m[1]]; ok {
				os.Version = v
			}
		}
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad"):
		os.Name = "iOS"
		if m := iosRe.FindStringSubmatch(ua); m != nil {
			os.Version = strings.ReplaceAll(m[1], "_", ".")
		}
	case strings.Contains(ua, "Mac OS X"):
		os.Name = "Mac OS X"
		if m := macRe.FindStringSubmatch(ua); m != nil {
			os.Version = strings.ReplaceAll(m[1], "_", ".")
		}
	case strings.Contains(ua, "Android"):
		os.Name = "Android"
		if m := androidRe.FindStringSubmatch(ua); m != nil {
			os.Version = m[1]
		}
	case strings.Contains(ua, "CrOS"):
		os.Name = "Chrome OS"
		if m := crosRe.FindStringSubmatch(ua); m != nil {
			os.Version = m[1]
		}
	case strings.Contains(ua, "Linux") || strings.Contains(ua, "X11"):
		os.Name = "Linux"
	}
	return browser, os
}

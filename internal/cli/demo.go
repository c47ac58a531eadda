package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	forgeapp "ferry/forge"
	"ferry/internal/config"
	"ferry/internal/export"
	"ferry/internal/forge"
	"ferry/internal/jirasim"
	"ferry/internal/staff"
	"ferry/internal/tenant"
)

// DemoInfo is what `ferry demo` prints and writes to <data-dir>/demo.json.
// Parts of Ferry that are not built yet have no key here.
type DemoInfo struct {
	AppURL        string `json:"app_url"`
	SimURL        string `json:"sim_url"`
	SimAdminEmail string `json:"sim_admin_email"`
	SimAdminToken string `json:"sim_admin_token"`
	ODataURL      string `json:"odata_url"`
	CSVURL        string `json:"csv_url"`
	Token         string `json:"token"`
	AppPageURL    string `json:"app_page_url,omitempty"`
	Platform      string `json:"platform"` // how the app was installed: forge (Custom UI, Forge Remote) or connect

	// The staff console and two demo staff members: support (who may decrypt
	// request logs) and auditor (who may read the audit trail).
	ConsoleURL        string `json:"console_url"`
	StaffUser         string `json:"staff_user"`
	StaffPassword     string `json:"staff_password"`
	StaffTOTPSecret   string `json:"staff_totp_secret"`
	AuditorUser       string `json:"auditor_user"`
	AuditorPassword   string `json:"auditor_password"`
	AuditorTOTPSecret string `json:"auditor_totp_secret"`

	SourceID string `json:"source_id"`
	TokenID  string `json:"token_id"`
}

// demoJQL restricts by date rather than by project, so that every sample
// user can run the sample source and sees only the projects they may browse.
const demoJQL = `created >= "2000-01-01" ORDER BY created DESC`

var demoFields = []string{"summary", "status", "priority", "issuetype", "project", "assignee", "reporter",
	"created", "updated", "labels", "fixVersions", "resolutiondate", "customfield_10010", "customfield_10011", "customfield_10012"}

// runDemo is `ferry demo`: the simulator with sample data, Ferry installed
// into it through the real signed lifecycle, a sample data source and a
// token, all on free localhost ports, until Ctrl-C.
func runDemo(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	appAddr := fs.String("app-addr", "127.0.0.1:0", "Ferry's listen address")
	simAddr := fs.String("sim-addr", "127.0.0.1:0", "the simulated Jira's listen address")
	consoleAddr := fs.String("console-addr", "127.0.0.1:0", "the staff console's listen address")
	dataDir := fs.String("data-dir", "ferry-demo", "Ferry's data directory for the demo")
	reset := fs.Bool("reset", false, "start fresh: delete the data directory first")
	issues := fs.Int("issues", 5000, "sample issues in the simulated Jira")
	platform := fs.String("platform", "forge", "install the app through forge (Custom UI pages, Forge Remote) or connect (the bridge for existing installations)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if *reset {
		if err := os.RemoveAll(*dataDir); err != nil {
			return fmt.Errorf("demo: reset: %w", err)
		}
	}
	if *platform != "forge" && *platform != "connect" {
		return &usageError{fmt.Sprintf("--platform %q: want forge or connect", *platform)}
	}
	d, err := startDemo(ctx, e, demoOptions{AppAddr: *appAddr, SimAddr: *simAddr, ConsoleAddr: *consoleAddr, DataDir: *dataDir, Issues: *issues, Platform: *platform})
	if err != nil {
		return err
	}
	printDemo(e.stdout, d.info, *dataDir)
	return d.wait()
}

type demoOptions struct {
	AppAddr, SimAddr, ConsoleAddr, DataDir string
	Issues                                 int
	Users                                  int // simulated users; 0 means 20
	// Platform is "forge" (ferry demo's default) or "connect"; empty is
	// connect, which the in-process tests written before Forge expect.
	Platform string
	// sliceRows, set only by tests, makes the feeds slice walks of a few
	// issues (export.Feeds.LeafRows), so that a small site exercises them.
	sliceRows int
	// simOptions, set only by tests, adjusts the simulated site.
	simOptions func(*jirasim.Options)
}

// demoForgeAppID is the demo's Forge app: the simulated Jira's platform
// knows it by this id, and Ferry pins every FIT's audience to it.
const demoForgeAppID = "ari:cloud:ecosystem::app/f3a1c0de-5eed-4a11-8b0b-000000000001"

type demo struct {
	info   DemoInfo
	wait   func() error
	app    *app // for in-process tests
	sim    *jirasim.Sim
	tenant string
}

func startDemo(ctx context.Context, e env, o demoOptions) (*demo, error) {
	ctx, cancel := context.WithCancel(ctx)
	fail := func(err error) (*demo, error) { cancel(); return nil, err }

	so := jirasim.Options{Issues: o.Issues, Projects: 4, Users: cmp.Or(o.Users, 20), Seed: 1, AllowHTTPApp: true}
	if o.simOptions != nil {
		o.simOptions(&so)
	}
	sim := jirasim.New(so)
	// A demo run again on its data directory brings the simulated site back
	// where it was: Ferry refuses to move an installed site to another host.
	prev := readDemoInfo(o.DataDir)
	simURL, err := "", errors.New("no previous address")
	if prevAddr := strings.TrimPrefix(prev.SimURL, "http://"); o.SimAddr == "127.0.0.1:0" && prevAddr != "" {
		simURL, err = sim.Start(ctx, prevAddr)
	}
	if err != nil {
		simURL, err = sim.Start(ctx, o.SimAddr)
	}
	if err != nil {
		return fail(fmt.Errorf("demo: start simulated Jira on %s: %w", o.SimAddr, err))
	}
	ln, err := net.Listen("tcp", o.AppAddr)
	if err != nil {
		return fail(fmt.Errorf("demo: listen on %s: %w", o.AppAddr, err))
	}
	appURL := "http://" + ln.Addr().String()
	if o.ConsoleAddr == "" {
		o.ConsoleAddr = "127.0.0.1:0"
	}
	cln, err := net.Listen("tcp", o.ConsoleAddr)
	if err != nil {
		ln.Close()
		return fail(fmt.Errorf("demo: listen on %s: %w", o.ConsoleAddr, err))
	}

	// Ferry as configured for a local simulator: loopback allowed for
	// outbound calls, Atlassian's services replaced by the simulator's.
	env := map[string]string{
		"FERRY_ADDR": ln.Addr().String(), "FERRY_DATA_DIR": o.DataDir, "FERRY_BASE_URL": appURL,
		"FERRY_EGRESS_ALLOW_LOOPBACK": "true", "FERRY_CONNECT_ALLOWED_HOSTS": "127.0.0.1:*,localhost:*",
		"FERRY_CONNECT_INSTALL_KEYS_URL": simURL + "/connect-install-keys", "FERRY_CONNECT_OAUTH_URL": simURL,
		"FERRY_CONNECT_JS_URL": simURL + "/atlassian-connect/all.js",
		"FERRY_CONSOLE_ADDR":   cln.Addr().String(), "FERRY_CONSOLE_URL": "http://" + cln.Addr().String(),
		"FERRY_FORGE_APP_ID": demoForgeAppID, "FERRY_FORGE_JWKS_URL": sim.ForgeJWKSURL(),
		"FERRY_FORGE_GRAPHQL_URL": sim.ForgeGraphQLURL(), "FERRY_FORGE_STORAGE_URL": sim.ForgeStorageURL(),
		"FERRY_LOG_LEVEL": "error", // the demo's own output is the interface; FERRY_LOG_LEVEL overrides
		// The pages load the Sentry browser SDK; errors stay in the local
		// store (no upstream). A public key is public: every page shows it.
		"FERRY_ERRORS_PUBLIC_KEY": "demo0000000000000000000000000000",
	}
	for _, k := range []string{"FERRY_DATABASE_URL", "FERRY_LOG_FORMAT", "FERRY_LOG_LEVEL", "FERRY_EXPORT_WORKERS",
		"FERRY_TRUSTED_PROXIES", "FERRY_FEED_CONCURRENCY_PER_SITE"} {
		if v := e.getenv(k); v != "" {
			env[k] = v
		}
	}
	cfg, _, err := config.Load("demo", nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		ln.Close()
		cln.Close()
		return fail(err)
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		ln.Close()
		cln.Close()
		return fail(err)
	}
	a.feeds.LeafRows = o.sliceRows
	served := make(chan error, 1)
	a.consoleLn = cln
	go func() { served <- serve(ctx, a, ln) }()
	stop := func(err error) (*demo, error) {
		cancel()
		<-served
		a.Close()
		return nil, err
	}

	var tn tenant.Installation
	var forgeInstall string
	if o.Platform == "forge" {
		// Install as Forge does: the app folder forge deploy would upload
		// (the manifest from this configuration, the Custom UI build), then
		// the installation and its avi:forge:installed:app event.
		tn, forgeInstall, err = installForgeDemo(ctx, a, sim, cfg, filepath.Join(o.DataDir, "forge"))
		if err != nil {
			return stop(err)
		}
		go sim.RunForgeTriggers(ctx, time.Hour)
	} else {
		// Install through the real signed lifecycle, as Jira does.
		inst, err := sim.Install(ctx, appURL, jirasim.InstallValid)
		if le := (*jirasim.LifecycleError)(nil); errors.As(err, &le) && le.Status == 409 && prev.SimURL != "" && prev.SimURL != simURL {
			return stop(fmt.Errorf("demo: the simulated Jira could not get its previous address %s back (now %s), and Ferry does not move an installed site; free that port or start over with --reset", prev.SimURL, simURL))
		}
		if err != nil {
			return stop(fmt.Errorf("demo: install the app into the simulated Jira: %w", err))
		}
		if tn, err = a.tenants.ByClientKey(ctx, inst.ClientKey); err != nil {
			return stop(fmt.Errorf("demo: installation not recorded: %w", err))
		}
	}
	users := sim.Users()
	admin := users[0]

	props, err := a.platform.Properties(ctx, tn)
	if err != nil {
		return stop(err)
	}
	sources := a.appAPI.Sources
	var src export.DataSource
	if prev.SourceID != "" {
		// The simulated Jira starts empty each run; put the sample source back
		// under the same id so feed URLs in BI tools keep working.
		now := time.Now().UTC()
		src = export.DataSource{ID: prev.SourceID, Name: "Demo: all issues", JQL: demoJQL, Fields: demoFields,
			Tables: []string{export.TableChangelog, export.TableIssues}, Owner: admin.AccountID, Visibility: export.VisibilityEveryone,
			History: []export.Change{{Action: "created", By: admin.AccountID, At: now}}, Updated: now}
		err = sources.Restore(ctx, props, tn.TenantID, src)
	} else {
		src, err = sources.Create(ctx, props, tn.TenantID, export.Input{Name: "Demo: all issues", JQL: demoJQL, Fields: demoFields,
			Tables: []string{export.TableChangelog, export.TableIssues}, Visibility: export.VisibilityEveryone}, admin.AccountID, time.Now().UTC())
	}
	if err != nil {
		return stop(fmt.Errorf("demo: create the sample data source: %w", err))
	}

	info := DemoInfo{AppURL: appURL, SimURL: simURL, SimAdminEmail: admin.Email, SimAdminToken: admin.APIToken,
		ODataURL: appURL + "/odata/" + src.ID + "/", CSVURL: appURL + "/export/" + src.ID + "/issues.csv", SourceID: src.ID}
	tokens := a.appAPI.Tokens
	if prev.Token != "" {
		if _, err := tokens.Authenticate(ctx, prev.Token, func(string) int { return cfg.TokenMaxDays }); err == nil {
			info.Token, info.TokenID = prev.Token, prev.TokenID
		}
	}
	if info.Token == "" {
		plain, tok, err := tokens.Create(ctx, tn.TenantID, admin.AccountID, "Ferry demo", 30, cfg.TokenMaxDays)
		if err != nil {
			return stop(fmt.Errorf("demo: create the sample token: %w", err))
		}
		info.Token, info.TokenID = plain, tok.ID
	}
	info.Platform = cmp.Or(o.Platform, "connect")
	switch {
	case forgeInstall != "":
		if info.AppPageURL, err = sim.ForgePageURL(forgeInstall, forge.ModuleDataSources, admin.AccountID); err != nil {
			return stop(err)
		}
	case a.pagesBuilt():
		info.AppPageURL = simURL + "/jira/apps/" + cfg.AddonKey + "/data-sources?as=" + admin.AccountID
	}
	info.ConsoleURL = cfg.ConsoleBaseURL() + "/console/"
	if err := demoError(ctx, a, appURL, tn.TenantID, admin.AccountID); err != nil {
		return stop(err)
	}
	if err := demoBackup(ctx, a); err != nil {
		return stop(err)
	}
	if info.StaffUser, info.StaffPassword, info.StaffTOTPSecret, err = demoStaff(ctx, a, "demo-support", staff.Support,
		prev.StaffUser, prev.StaffPassword, prev.StaffTOTPSecret); err != nil {
		return stop(err)
	}
	if info.AuditorUser, info.AuditorPassword, info.AuditorTOTPSecret, err = demoStaff(ctx, a, "demo-auditor", staff.Auditor,
		prev.AuditorUser, prev.AuditorPassword, prev.AuditorTOTPSecret); err != nil {
		return stop(err)
	}
	if err := writeDemoInfo(o.DataDir, info); err != nil {
		return stop(err)
	}
	return &demo{info: info, app: a, sim: sim, tenant: tn.TenantID, wait: func() error {
		err := <-served
		cancel()
		a.Close()
		return err
	}}, nil
}

// installForgeDemo installs the app into the simulated Jira through Forge
// and returns its tenant and Forge installation id. The simulated site keeps
// its ids across runs (same seed), so a second run finds the same tenant.
func installForgeDemo(ctx context.Context, a *app, sim *jirasim.Sim, cfg config.Config, dir string) (tenant.Installation, string, error) {
	m, err := forge.Manifest(forgeManifestOptions(cfg))
	if err != nil {
		return tenant.Installation{}, "", fmt.Errorf("demo: Forge manifest: %w", err)
	}
	if err := forgeapp.WriteApp(dir, m); err != nil {
		return tenant.Installation{}, "", fmt.Errorf("demo: Forge app folder: %w", err)
	}
	fa, err := jirasim.LoadForgeManifest(filepath.Join(dir, "manifest.yml"), nil)
	if err != nil {
		return tenant.Installation{}, "", fmt.Errorf("demo: %w", err)
	}
	fi, err := sim.InstallForge(ctx, fa)
	if err != nil {
		return tenant.Installation{}, "", fmt.Errorf("demo: install the app into the simulated Jira through Forge: %w", err)
	}
	tn, err := a.tenants.ByInstallationID(ctx, fi.ID)
	if err != nil {
		return tenant.Installation{}, "", fmt.Errorf("demo: Forge installation not recorded: %w", err)
	}
	return tn, fi.ID, nil
}

// demoStaff makes (or, on a second run, keeps) an enrolled demo staff
// member through the same enrolment steps a person takes. The enrolment
// uses the previous time step's code, so the authenticator's current code
// is good for the first sign-in.
func demoStaff(ctx context.Context, a *app, user string, role staff.Role, prevUser, prevPassword, prevSecret string) (string, string, string, error) {
	if prevUser == user && prevPassword != "" {
		if acc, err := a.staff.ByUsername(ctx, user); err == nil && acc.HasPassword && acc.Inactive(a.staff.Now()) == "" {
			return user, prevPassword, prevSecret, nil
		}
	}
	by := staff.CLIActor("ferry demo")
	if _, err := a.staff.ByUsername(ctx, user); err == nil {
		tok, err := a.staff.NewEnrolment(ctx, by, user)
		if err != nil {
			return "", "", "", fmt.Errorf("demo: staff %s: %w", user, err)
		}
		return enrolDemo(ctx, a, user, tok)
	}
	_, tok, err := a.staff.Add(ctx, by, staff.NewAccount{Username: user, DisplayName: "Demo " + string(role), Role: role})
	if err != nil {
		return "", "", "", fmt.Errorf("demo: staff %s: %w", user, err)
	}
	return enrolDemo(ctx, a, user, tok)
}

func enrolDemo(ctx context.Context, a *app, user, tok string) (string, string, string, error) {
	en, err := a.staff.OpenEnrolment(ctx, tok)
	if err != nil {
		return "", "", "", err
	}
	b := make([]byte, 12)
	rand.Read(b)
	password := "demo-" + hex.EncodeToString(b)
	code, err := staff.TOTPCode(en.TOTPSecret, a.staff.Now().Add(-30*time.Second))
	if err != nil {
		return "", "", "", err
	}
	if _, err := a.staff.CompleteEnrolment(ctx, tok, password, code); err != nil {
		return "", "", "", fmt.Errorf("demo: enrol %s: %w", user, err)
	}
	return user, password, en.TOTPSecret, nil
}

func readDemoInfo(dir string) DemoInfo {
	var d DemoInfo
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err == nil {
		json.Unmarshal(b, &d)
	}
	return d
}

// writeDemoInfo writes demo.json, readable only by its owner: it holds a token.
func writeDemoInfo(dir string, d DemoInfo) error {
	b, _ := json.MarshalIndent(d, "", "  ")
	path := filepath.Join(dir, "demo.json")
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

func printDemo(w io.Writer, d DemoInfo, dir string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("Ferry demo is running. Press Ctrl-C to stop.")
	p("")
	p("  Ferry            %s", d.AppURL)
	p("  Simulated Jira   %s   (sign in with %s / %s)", d.SimURL, d.SimAdminEmail, d.SimAdminToken)
	p("")
	p("OData feed — Power BI: Get Data → OData feed; Excel: Data → Get Data → From OData Feed")
	p("  URL        %s", d.ODataURL)
	p("  Sign-in    Basic: any user name, and this token as the password")
	p("  Token      %s", d.Token)
	p("")
	p("Try it:")
	p("  curl -u demo:%s '%sIssues?$top=3&$select=Key,Summary,Status'", d.Token, d.ODataURL)
	p("  curl -u demo:%s '%s' -o issues.csv", d.Token, d.CSVURL)
	p("  go run ./cmd/ferry export --url %s --token %s --out issues.csv", d.ODataURL, d.Token)
	if d.AppPageURL != "" {
		p("")
		p("The app inside (simulated) Jira: create data sources and tokens in a browser")
		p("  %s", d.AppPageURL)
	}
	if d.ConsoleURL != "" {
		p("")
		p("Staff console (sign in with a password and a code from an authenticator app)")
		p("  %s", d.ConsoleURL)
		p("  support  %s / %s   TOTP secret %s", d.StaffUser, d.StaffPassword, d.StaffTOTPSecret)
		p("  auditor  %s / %s   TOTP secret %s", d.AuditorUser, d.AuditorPassword, d.AuditorTOTPSecret)
		p("  Add the secrets to an authenticator app, or: oathtool --totp -b SECRET")
	}
	p("")
	p("All of this is in %s (keep it private: it holds the token and the demo staff sign-ins).", filepath.Join(dir, "demo.json"))
	p("Run again to reuse the data directory; --reset starts fresh.")
}

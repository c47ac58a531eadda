package jirasim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// RunCLI implements `ferry sim` (args exclude "sim"):
//
//	ferry sim [--addr 127.0.0.1:0] [--issues N] [--projects M] [--users U] [--seed S]
//	          [--latency D] [--jitter D] [--rate R] [--fault-rate F] [--allow-http-app] [--json]
//	          [--quota POINTS] [--quota-tier global|tenant] [--quota-window D] [--quota-beta]
//	ferry sim install --sim URL --app URL [--variant NAME]
//
// The first form serves until ctx is cancelled; the second drives a running
// sim's control API.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "install" {
		return runInstall(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("ferry sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	var o Options
	fs.IntVar(&o.Issues, "issues", 1000, "generated issues")
	fs.IntVar(&o.Projects, "projects", 3, "projects")
	fs.IntVar(&o.Users, "users", 20, "users (the first is the site admin)")
	fs.Int64Var(&o.Seed, "seed", 1, "data seed: same seed, same site")
	fs.DurationVar(&o.Latency, "latency", 0, "added latency per REST request")
	fs.DurationVar(&o.Jitter, "jitter", 0, "latency jitter (±)")
	fs.Float64Var(&o.Rate, "rate", 0, "rate limit in requests/s per tenant×endpoint (0 = none)")
	fs.Float64Var(&o.FaultRate, "fault-rate", 0, "fraction of REST requests that fail")
	fs.BoolVar(&o.AllowHTTPApp, "allow-http-app", true, "accept app base URLs on loopback http")
	fs.IntVar(&o.Quota.Points, "quota", 0, "hourly points quota of each pool for app traffic (Jira's Tier 1 default: 65000; 0 = none)")
	fs.StringVar(&o.Quota.Tier, "quota-tier", "global", "quota pool: global (one per app, Tier 1) or tenant (one per app and site, Tier 2)")
	fs.DurationVar(&o.Quota.Window, "quota-window", time.Hour, "quota window (Jira: one hour, reset at the top of each UTC hour)")
	fs.BoolVar(&o.Quota.Beta, "quota-beta", false, "quota headers only, never a 429 (Jira before enforcement)")
	asJSON := fs.Bool("json", false, "print one JSON line with the base URL and users first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("ferry sim: unexpected argument %q", fs.Arg(0))
	}
	if o.Issues < 0 || o.Projects < 1 || o.Users < 1 || o.FaultRate < 0 || o.FaultRate > 1 || o.Rate < 0 {
		return errors.New("ferry sim: need issues ≥ 0, projects ≥ 1, users ≥ 1, rate ≥ 0 and fault-rate within [0, 1]")
	}
	if err := o.Quota.valid(); err != nil {
		return fmt.Errorf("ferry sim: %w", err)
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if o.Issues == 0 {
		o.Issues = -1 // the flag means zero; Options reads 0 as "default"
	}
	s := New(o)
	base, err := s.Start(ctx, *addr)
	if err != nil {
		return err
	}
	defer s.Close()
	if *asJSON {
		type user struct {
			Email     string `json:"email"`
			APIToken  string `json:"api_token"`
			AccountID string `json:"account_id"`
			Admin     bool   `json:"admin"`
		}
		out := struct {
			BaseURL string            `json:"base_url"`
			Users   []user            `json:"users"`
			Forge   map[string]string `json:"forge"`
		}{BaseURL: base, Forge: map[string]string{"jwks_url": s.ForgeJWKSURL(), "graphql_url": s.ForgeGraphQLURL(),
			"storage_url": s.ForgeStorageURL(), "api_base_url": s.ForgeAPIBaseURL(), "cloud_id": s.CloudID()}}
		for _, u := range s.credentials() {
			if !u.Closed {
				out.Users = append(out.Users, user{u.Email, u.APIToken, u.AccountID, u.Admin})
			}
		}
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "Jira simulator at %s (%d issues, %d projects %s, %d users, seed %d)\n",
			base, s.data.n, len(s.data.projects), strings.Join(s.ProjectKeys(), ","), len(s.data.users), o.Seed)
		fmt.Fprintln(stdout, "Sign in with HTTP Basic (email + API token):")
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tEMAIL\tAPI TOKEN\tACCOUNT ID\tPROJECTS")
		for _, u := range s.credentials() {
			if u.Closed {
				continue
			}
			role := "user"
			if u.Admin {
				role = "admin"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", role, u.Email, u.APIToken, u.AccountID, strings.Join(u.Projects, ","))
		}
		tw.Flush()
		fmt.Fprintf(stdout, "Forge: JWKS %s, GraphQL %s, apiBaseUrl %s (install with POST %s/_sim/forge/install)\n",
			s.ForgeJWKSURL(), s.ForgeGraphQLURL(), s.ForgeAPIBaseURL(), base)
	}
	<-ctx.Done()
	return nil
}

func runInstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferry sim install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	simURL := fs.String("sim", "", "base URL of a running simulator")
	appURL := fs.String("app", "", "the app's base URL (serving /atlassian-connect.json)")
	variant := fs.String("variant", "valid", "install variant: "+strings.Join(variantNames, ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *simURL == "" || *appURL == "" {
		return errors.New("ferry sim install: --sim and --app are required")
	}
	body, _ := json.Marshal(map[string]string{"app": *appURL, "variant": *variant})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*simURL, "/")+"/_sim/install", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ferry sim install: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != http.StatusOK {
		var e ctlError
		json.Unmarshal(raw, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return fmt.Errorf("ferry sim install: %s", e.Error)
	}
	var in Installation
	if err := json.Unmarshal(raw, &in); err != nil {
		return fmt.Errorf("ferry sim install: %w", err)
	}
	// The shared secret stays out of terminal output and logs.
	fmt.Fprintf(stdout, "installed %s on %s (clientKey %s, app answered %d, license %s)\n", in.AddonKey, in.BaseURL, in.ClientKey, in.Status, in.License)
	for _, m := range in.Modules {
		fmt.Fprintf(stdout, "  page %s: %s/jira/apps/%s/%s\n", m.Name, strings.TrimSuffix(*simURL, "/"), in.AddonKey, m.Key)
	}
	return nil
}

// Package cli is the ferry command: main calls Run, and so do the tests.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	"ferry/internal/config"
	"ferry/internal/jirasim"
)

// Version is set at build time: go build -ldflags "-X ferry/internal/cli.Version=v1.2.3".
var Version = "dev"

// env bundles what a command may touch of the outside world.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":   {"run the HTTP server and periodic jobs", runServe},
		"migrate": {"apply database migrations and exit", runMigrate},
		"keys":    {"KEK versions: keys list | keys rotate-kek [--to aws-kms://…] | keys retire-kek VERSION", runKeys},
		"jobs":    {"list jobs, or run one now: jobs run NAME", runJobs},
		"reqlog":  {"show request log entries: reqlog show --tenant ID [--decrypt ENTRY_ID --reason WHY]", runReqlog},
		"version": {"print the version", runVersion},
		"sim": {"run the Jira Cloud simulator: sim --issues N --users U …; sim install --sim URL --app URL", func(ctx context.Context, e env, args []string) error {
			return jirasim.RunCLI(ctx, args, e.stdout, e.stderr)
		}},
		"demo":   {"run the whole product locally: simulated Jira, Ferry, sample data and a working feed", runDemo},
		"export": {"pull a feed to a file: export --url URL --token TOKEN --format csv|ndjson --out FILE", runExport},
		"staff":  {"staff console accounts: staff add --user NAME --role ROLE | list | disable | reenrol", runStaff},
		"audit":  {"the audit trail: audit verify | audit checkpoint", runAudit},

		"tenants": {"installations: tenants list | show --tenant ID | delete --tenant ID --reason WHY", runTenants},
		"backup":  {"backups: backup now | list | verify [ID] | restore [ID] --to PATH|URL", runBackup},
		"forge":   {"Forge app: forge manifest (writes forge/manifest.yml) | forge ui --bundle FILE", runForge},
	}
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// ExitCode maps an error from Run to a process exit status: 2 for bad
// configuration or usage, 1 for everything else.
func ExitCode(err error) int {
	var ue *usageError
	if config.IsConfigError(err) || errors.As(err, &ue) {
		return 2
	}
	return 1
}

// Run is the whole program.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) < 2 || args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
		usage(stdout, cmds)
		if len(args) < 2 {
			return &usageError{"no command given"}
		}
		return nil
	}
	c, ok := cmds[args[1]]
	if !ok {
		usage(stderr, cmds)
		return &usageError{fmt.Sprintf("unknown command %q", args[1])}
	}
	err := c.run(ctx, e, args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "Usage: ferry COMMAND [flags]\n\nCommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'ferry COMMAND --help' for a command's flags. Configuration is read from FERRY_* variables first; flags override.")
}

func runVersion(_ context.Context, e env, _ []string) error {
	fmt.Fprintln(e.stdout, "ferry", Version)
	return nil
}

// loadConfig parses configuration for a command; --help prints the reference.
func loadConfig(e env, name string, args []string, extra func(*flag.FlagSet)) (config.Config, []string, error) {
	cfg, rest, err := config.Load(name, args, e.getenv, extra)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(e.stdout, "Usage: ferry %s [flags]\n\nFlags and variables:\n", name)
		config.Usage(e.stdout)
	}
	return cfg, rest, err
}

package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
)

// withApp runs an administrative command: configuration from the
// environment and args, an opened (and migrated) app, closed afterwards.
func withApp(ctx context.Context, e env, name string, args []string, fn func(a *app) error) error {
	cfg, _, err := loadConfig(e, name, args, nil)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a)
}

// withAppFlags is withApp for a command with flags of its own and positional
// arguments after them.
func withAppFlags(ctx context.Context, e env, name string, args []string, extra func(*flag.FlagSet), fn func(a *app, rest []string) error) error {
	cfg, rest, err := loadConfig(e, name, args, extra)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a, rest)
}

func runMigrate(ctx context.Context, e env, args []string) error {
	return withApp(ctx, e, "migrate", args, func(a *app) error {
		fmt.Fprintf(e.stdout, "migrations current (%s)\n", a.db.Dialect)
		return nil
	})
}

const keysUsage = "usage: ferry keys list | ferry keys rotate-kek [--to aws-kms://…] | ferry keys retire-kek VERSION"

// runKeys manages KEK versions. Rotation and retirement are separate steps,
// so servers running meanwhile never meet a key they cannot open: rotate-kek
// adds a primary version and re-wraps; retire-kek VERSION, later, drops an
// old version once nothing is wrapped under it.
func runKeys(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return &usageError{keysUsage}
	}
	switch args[0] {
	case "list":
		return withApp(ctx, e, "keys list", args[1:], func(a *app) error {
			vs, err := a.keys.Versions(ctx)
			if err != nil {
				return err
			}
			for _, v := range vs {
				role := "old"
				if v.Primary {
					role = "primary"
				}
				fmt.Fprintf(e.stdout, "version %d  %-7s  %d tenant keysets, %d log day keys  %s\n", v.Version, role, v.Tenant, v.Day, v.KeyRef)
			}
			return nil
		})
	case "rotate-kek":
		var to string
		return withAppFlags(ctx, e, "keys rotate-kek", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&to, "to", "", "aws-kms:// URI of the new KEK; empty for a new key in the local key file")
		}, func(a *app, _ []string) error {
			res, err := a.keys.Rotate(ctx, to)
			if err != nil {
				return fmt.Errorf("rotate KEK: %w", err)
			}
			fmt.Fprintf(e.stdout, "KEK version %d is primary: re-wrapped %d tenant keysets and %d log day keys\n", res.Version, res.TenantKeysets, res.DayKeysets)
			fmt.Fprintln(e.stdout, "older versions stay readable; once every server reports ready, retire them with: ferry keys retire-kek VERSION")
			return nil
		})
	case "retire-kek":
		return withAppFlags(ctx, e, "keys retire-kek", args[1:], nil, func(a *app, rest []string) error {
			if len(rest) != 1 {
				return &usageError{"usage: ferry keys retire-kek VERSION (ferry keys list shows the versions)"}
			}
			v, err := strconv.ParseInt(rest[0], 10, 64)
			if err != nil || v <= 0 {
				return &usageError{fmt.Sprintf("retire-kek: %q is not a KEK version number", rest[0])}
			}
			res, err := a.keys.Retire(ctx, v)
			if err != nil {
				return fmt.Errorf("retire KEK version %d: %w", v, err)
			}
			fmt.Fprintf(e.stdout, "KEK version %d retired: nothing is wrapped under it (re-wrapped %d tenant keysets and %d log day keys under version %d first)\n",
				v, res.TenantKeysets, res.DayKeysets, res.Version)
			return nil
		})
	}
	return &usageError{keysUsage}
}

func runJobs(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || (args[0] != "run" && args[0] != "list") || (args[0] == "run" && len(args) < 2) {
		return &usageError{"usage: ferry jobs list | ferry jobs run NAME"}
	}
	rest := args[1:]
	if args[0] == "run" {
		rest = args[2:]
	}
	return withApp(ctx, e, "jobs", rest, func(a *app) error {
		if args[0] == "list" {
			for _, j := range a.jobs.List() {
				every := "on demand"
				if j.Every > 0 {
					every = "every " + j.Every.String()
				}
				fmt.Fprintf(e.stdout, "%-28s %-14s %s\n", j.Name, every, j.Doc)
			}
			return nil
		}
		if err := a.jobs.RunOnce(ctx, args[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "job %s done\n", args[1])
		return nil
	})
}

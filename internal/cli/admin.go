package cli

import (
	"context"
	"fmt"

	"ferry/internal/keys"
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

func runMigrate(ctx context.Context, e env, args []string) error {
	return withApp(ctx, e, "migrate", args, func(a *app) error {
		fmt.Fprintf(e.stdout, "migrations current (%s)\n", a.db.Dialect)
		return nil
	})
}

func runKeys(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "rotate-kek" {
		return &usageError{"usage: ferry keys rotate-kek"}
	}
	return withApp(ctx, e, "keys rotate-kek", args[1:], func(a *app) error {
		local, ok := a.keys.KEK().(*keys.LocalKEK)
		if !ok {
			// With a KMS, rotation of the key material happens in the KMS (AWS
			// rotates KMS keys in place); moving to another key is a re-wrap.
			return &usageError{"FERRY_KEK is a KMS key: enable automatic rotation in AWS KMS; Ferry's wrapped keysets stay valid"}
		}
		_, res, err := keys.RotateLocalKEK(ctx, a.db, local)
		if err != nil {
			return fmt.Errorf("rotate KEK: %w", err)
		}
		fmt.Fprintf(e.stdout, "KEK rotated: re-wrapped %d tenant keysets and %d log day keys\n", res.TenantKeysets, res.DayKeysets)
		return nil
	})
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

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"ferry/internal/tenant"
)

// MinDeletionReasonLen is the shortest reason `ferry tenants delete` takes.
const MinDeletionReasonLen = 10

// runTenants is `ferry tenants list|show|delete`: the installations Ferry
// keeps, what it holds of one, and immediate deletion by an operator
// (statement: "the customer can contact us to ask for immediate manual
// deletion"). The deletion is recorded with the operator and the reason in
// the tenant's deletion record.
func runTenants(ctx context.Context, e env, args []string) error {
	const use = `usage: ferry tenants list | ferry tenants show --tenant ID | ferry tenants delete --tenant ID --reason "why" [--operator NAME]`
	if len(args) == 0 {
		return &usageError{use}
	}
	var id, reason, operator string
	cfg, rest, err := loadConfig(e, "tenants "+args[0], args[1:], func(fs *flag.FlagSet) {
		switch args[0] {
		case "show", "delete":
			fs.StringVar(&id, "tenant", "", "tenant id (ferry tenants list shows them)")
		}
		if args[0] == "delete" {
			fs.StringVar(&reason, "reason", "", fmt.Sprintf("why the tenant is deleted now, e.g. the customer's ticket (at least %d characters; recorded, no personal data)", MinDeletionReasonLen))
			fs.StringVar(&operator, "operator", "", "who deletes it (default: $USER; recorded)")
		}
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q; %s", rest[0], use)}
	}
	switch args[0] {
	case "list":
	case "show":
		if id == "" {
			return &usageError{"--tenant is required; " + use}
		}
	case "delete":
		if id == "" {
			return &usageError{"--tenant is required; " + use}
		}
		if operator == "" {
			operator = e.getenv("USER")
		}
		if len([]rune(strings.TrimSpace(reason))) < MinDeletionReasonLen {
			return &usageError{fmt.Sprintf("--reason of at least %d characters is required: it is recorded in the deletion record", MinDeletionReasonLen)}
		}
		if strings.TrimSpace(operator) == "" {
			return &usageError{"--operator NAME (or $USER) is required: it is recorded with the reason"}
		}
	default:
		return &usageError{fmt.Sprintf("unknown tenants command %q; %s", args[0], use)}
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	switch args[0] {
	case "list":
		return listTenants(ctx, e.stdout, a)
	case "show":
		return showTenant(ctx, e.stdout, a, id)
	}
	// delete: mark now, then purge in this process.
	if err := a.purger.RequestDeletion(ctx, id, tenant.Deletion{Cause: tenant.CauseOperator, Reason: strings.TrimSpace(reason),
		By: strings.TrimSpace(operator), Actor: "cli:" + strings.TrimSpace(operator)}); err != nil {
		if errors.Is(err, tenant.ErrNotFound) {
			if rec, derr := a.purger.Deletion(ctx, id); derr == nil {
				fmt.Fprintf(e.stdout, "tenant %s was already purged:\n", id)
				printRecord(e.stdout, rec)
				return nil
			}
			return fmt.Errorf("no installation with tenant id %q (ferry tenants list shows them)", id)
		}
		return err
	}
	rec, err := a.purger.Purge(ctx, id)
	if err != nil {
		return fmt.Errorf("tenant %s is marked for deletion, but the purge stopped: %w (the tenant.purge job finishes it)", id, err)
	}
	fmt.Fprintf(e.stdout, "tenant %s deleted; recorded with operator %s and the reason given\n", id, rec.RequestedBy)
	printRecord(e.stdout, rec)
	return nil
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func listTenants(ctx context.Context, w io.Writer, a *app) error {
	all, err := a.tenants.All(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSTATE\tSITE\tINSTALLED\tPURGE AFTER\tCAUSE")
	for _, in := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.TenantID, in.State, tenant.SiteHost(in.BaseURL), day(in.InstalledAt),
			day(in.PurgeAfter), orDash(string(in.DeletionCause)))
	}
	recs, err := a.purger.Deletions(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		state := "purged"
		if r.FinishedAt.IsZero() {
			state = "purging"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.TenantID, state, "-", "-", day(r.PurgeAfter), orDash(string(r.Cause)))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func showTenant(ctx context.Context, w io.Writer, a *app, id string) error {
	in, err := a.tenants.ByID(ctx, id)
	if errors.Is(err, tenant.ErrNotFound) {
		rec, derr := a.purger.Deletion(ctx, id)
		if derr != nil {
			return fmt.Errorf("no installation with tenant id %q (ferry tenants list shows them)", id)
		}
		fmt.Fprintf(w, "tenant %s: purged\n", id)
		printRecord(w, rec)
		return nil
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"tenant", in.TenantID}, {"state", string(in.State)}, {"site", in.BaseURL}, {"product", in.ProductType},
		{"app key", in.AddonKey}, {"SEN", in.ServiceEntitlementNumber}, {"installed", day(in.InstalledAt)},
		{"first installed", day(in.CreatedAt)}, {"disabled", day(in.DisabledAt)}, {"marked for deletion", day(in.UninstalledAt)},
		{"purge after", day(in.PurgeAfter)}, {"cause", orDash(string(in.DeletionCause))},
		{"licence inactive since", day(in.LicenseInactiveSince)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	tw.Flush()
	counts, err := a.purger.Counts(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nrows held, per data category:")
	printCounts(w, counts, nil)
	return nil
}

func printRecord(w io.Writer, r tenant.Record) {
	fmt.Fprintf(w, "  cause         %s\n", r.Cause)
	if r.Reason != "" {
		fmt.Fprintf(w, "  reason        %s\n", r.Reason)
	}
	if r.RequestedBy != "" {
		fmt.Fprintf(w, "  requested by  %s\n", r.RequestedBy)
	}
	fmt.Fprintf(w, "  marked        %s\n  purge after   %s\n  started       %s\n  finished      %s\n",
		day(r.MarkedAt), day(r.PurgeAfter), day(r.StartedAt), day(r.FinishedAt))
	fmt.Fprintln(w, "  rows per data category, before → after:")
	printCounts(w, r.CountsBefore, r.CountsAfter)
}

func printCounts(w io.Writer, before, after map[string]int64) {
	var cats []string
	for c := range before {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range cats {
		if after != nil {
			fmt.Fprintf(tw, "    %s\t%d → %d\n", c, before[c], after[c])
		} else {
			fmt.Fprintf(tw, "    %s\t%d\n", c, before[c])
		}
	}
	tw.Flush()
}

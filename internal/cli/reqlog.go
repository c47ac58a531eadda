package cli

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"ferry/internal/reqlog"
)

// runReqlog is `ferry reqlog show`: list a tenant's request log metadata.
// Decrypting a logged request is not possible here: it needs a signed-in
// staff member whose role allows it, a reason and a ticket, recorded in the
// audit trail first — the staff console's request-log page.
func runReqlog(ctx context.Context, e env, args []string) error {
	const use = `usage: ferry reqlog show --tenant ID [--since YYYY-MM-DD] [--limit N]`
	if len(args) == 0 || args[0] != "show" {
		return &usageError{use}
	}
	var tenant, since, decrypt string
	var limit int
	cfg, rest, err := loadConfig(e, "reqlog show", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&tenant, "tenant", "", `tenant id whose entries to show ("-": requests no tenant was identified for)`)
		fs.StringVar(&since, "since", "", "show entries from this UTC day on (YYYY-MM-DD; default: the whole window)")
		fs.IntVar(&limit, "limit", 100, "most entries to list")
		fs.StringVar(&decrypt, "decrypt", "", "no longer here: decrypt in the staff console (signed in, with a reason and a ticket)")
		// Accepted only to say where decryption went.
		fs.String("reason", "", "no longer here (see --decrypt)")
		fs.String("operator", "", "no longer here (see --decrypt)")
	})
	if err != nil {
		return err
	}
	if decrypt != "" {
		return &usageError{fmt.Sprintf("decrypting a logged request needs a signed-in staff member with the support or developer role, "+
			"a reason and a ticket, recorded in the audit trail first: open %s/console/reqlog/%s", cfg.ConsoleBaseURL(), url.PathEscape(decrypt))}
	}
	if len(rest) > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q; %s", rest[0], use)}
	}
	var from time.Time
	if since != "" {
		if from, err = time.Parse(time.DateOnly, since); err != nil {
			return &usageError{fmt.Sprintf("--since %q: want a day as YYYY-MM-DD", since)}
		}
	}
	if tenant == "-" {
		tenant = ""
	} else if tenant == "" {
		return &usageError{"--tenant is required; " + use}
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if from.IsZero() {
		from = reqlog.Cutoff(a.db.Now(), cfg.RequestLogDays)
	}
	entries, err := a.requests.List(ctx, tenant, from, limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tROUTE\tSTATUS\tDURATION\tBYTES\tERROR\tUSER")
	for _, x := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", x.ID, x.At.Format(time.RFC3339), x.Route, x.Status,
			x.Duration.Round(time.Microsecond), x.BytesOut, x.ErrorCode, x.UserPseudonym)
	}
	tw.Flush()
	if len(entries) == 0 {
		fmt.Fprintf(e.stderr, "no entries for tenant %q since %s\n", tenant, from.Format(time.DateOnly))
	}
	return nil
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"ferry/internal/reqlog"
)

// runReqlog is `ferry reqlog show`: list a tenant's request log metadata, or
// decrypt one logged request after recording who asked and why. (The staff
// console, with roles, will offer the same through the same store calls.)
func runReqlog(ctx context.Context, e env, args []string) error {
	const use = `usage: ferry reqlog show --tenant ID [--since YYYY-MM-DD] [--limit N] [--decrypt ENTRY_ID --reason "why" [--operator NAME]]`
	if len(args) == 0 || args[0] != "show" {
		return &usageError{use}
	}
	var tenant, since, decrypt, reason, operator string
	var limit int
	cfg, rest, err := loadConfig(e, "reqlog show", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&tenant, "tenant", "", `tenant id whose entries to show ("-": requests no tenant was identified for)`)
		fs.StringVar(&since, "since", "", "show entries from this UTC day on (YYYY-MM-DD; default: the whole window)")
		fs.IntVar(&limit, "limit", 100, "most entries to list")
		fs.StringVar(&decrypt, "decrypt", "", "entry id whose sealed request to decrypt (audited)")
		fs.StringVar(&reason, "reason", "", fmt.Sprintf("why the request is decrypted (at least %d characters; recorded)", reqlog.MinReasonLen))
		fs.StringVar(&operator, "operator", "", "who is decrypting (default: $USER; recorded)")
	})
	if err != nil {
		return err
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
	} else if tenant == "" && decrypt == "" {
		return &usageError{"--tenant is required; " + use}
	}
	if decrypt != "" {
		if operator == "" {
			operator = e.getenv("USER")
		}
		if len([]rune(strings.TrimSpace(reason))) < reqlog.MinReasonLen {
			return &usageError{fmt.Sprintf("--decrypt needs --reason of at least %d characters saying why; it is recorded with your name", reqlog.MinReasonLen)}
		}
		if strings.TrimSpace(operator) == "" {
			return &usageError{"--decrypt needs --operator NAME (or $USER); it is recorded with the reason"}
		}
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if decrypt != "" {
		entry, err := a.requests.Get(ctx, decrypt, cfg.RequestLogDays)
		if err != nil {
			return explainReqlogErr(err, cfg.RequestLogDays)
		}
		if tenant != "" && entry.TenantID != tenant {
			return fmt.Errorf("entry %s does not belong to tenant %q", decrypt, tenant)
		}
		entry, req, err := a.requests.DecryptRequest(ctx, decrypt, operator, reason, cfg.RequestLogDays)
		if err != nil {
			return explainReqlogErr(err, cfg.RequestLogDays)
		}
		fmt.Fprintf(e.stderr, "decryption of %s recorded (operator %s)\n", entry.ID, operator)
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			Entry   reqlog.Entry   `json:"entry"`
			Request reqlog.Request `json:"request"`
		}{entry, req})
	}
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

func explainReqlogErr(err error, days int) error {
	if errors.Is(err, reqlog.ErrExpired) {
		return fmt.Errorf("%w; request logs are kept %d days, so nobody can read this request any more", err, days)
	}
	return err
}

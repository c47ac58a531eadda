package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"ferry/internal/audit"
	"ferry/internal/staff"
)

// runStaff is `ferry staff add | list | disable | reenrol`. Whoever runs it
// holds the database and the KEK; each change is recorded in the audit
// trail as done by cli:$USER.
func runStaff(ctx context.Context, e env, args []string) error {
	const use = "usage: ferry staff add --user NAME --role ROLE [--name \"Display Name\"] [--subcontractor --company C --contract REF --contract-end YYYY-MM-DD] | staff list | staff disable --user NAME | staff reenrol --user NAME"
	if len(args) == 0 {
		return &usageError{use}
	}
	var user, role, name, company, contract, end string
	var sub bool
	flags := func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "user name (lower-case letters, digits, . _ -; not an email address)")
		if args[0] == "add" {
			fs.StringVar(&role, "role", "", "admin, support, developer, billing or auditor")
			fs.StringVar(&name, "name", "", "display name")
			fs.BoolVar(&sub, "subcontractor", false, "a subcontractor, not an employee: needs --company, --contract and --contract-end")
			fs.StringVar(&company, "company", "", "the subcontractor's company")
			fs.StringVar(&contract, "contract", "", "reference of the contract that binds the subcontractor")
			fs.StringVar(&end, "contract-end", "", "last day of the contract (YYYY-MM-DD); access ends when it ends")
		}
	}
	switch args[0] {
	case "add", "list", "disable", "reenrol":
	default:
		return &usageError{use}
	}
	cfg, rest, err := loadConfig(e, "staff "+args[0], args[1:], flags)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q; %s", rest[0], use)}
	}
	if args[0] != "list" && user == "" {
		return &usageError{"--user is required; " + use}
	}
	if args[0] == "add" {
		if _, err := staff.ParseRole(role); err != nil {
			return &usageError{"--role: " + err.Error()}
		}
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	by := staff.CLIActor(e.getenv("USER"))
	switch args[0] {
	case "add":
		acc, tok, err := a.staff.Add(ctx, by, staff.NewAccount{Username: user, DisplayName: name, Role: staff.Role(role),
			Subcontractor: sub, Company: company, ContractRef: contract, ContractEnd: end})
		if err != nil {
			return staffErr(err)
		}
		fmt.Fprintf(e.stdout, "Added %s (%s, %s). One-time enrolment link, valid %s — send it over a trusted channel:\n%s\n",
			acc.Username, acc.Role, acc.Kind(), staff.EnrolmentTTL, a.console.EnrolURL(tok))
	case "reenrol":
		tok, err := a.staff.NewEnrolment(ctx, by, user)
		if err != nil {
			return staffErr(err)
		}
		fmt.Fprintf(e.stdout, "%s must enrol again (old password, authenticator and sessions no longer work). One-time link:\n%s\n", user, a.console.EnrolURL(tok))
	case "disable":
		acc, err := a.staff.ByUsername(ctx, user)
		if err != nil {
			return staffErr(err)
		}
		if err := a.staff.Disable(ctx, by, acc.ID); err != nil {
			return staffErr(err)
		}
		fmt.Fprintf(e.stdout, "Disabled %s; its sessions ended.\n", user)
	case "list":
		as, err := a.staff.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tROLE\tKIND\tCONTRACT\tSIGN-IN\tSTATUS")
		now := a.staff.Now()
		for _, x := range as {
			contract, how, status := "-", "-", "active"
			if x.Subcontractor {
				contract = fmt.Sprintf("%s, %s, ends %s", x.Company, x.ContractRef, x.ContractEnd)
			}
			if x.SSO {
				how = "single sign-on"
			} else if x.HasPassword {
				how = "password + TOTP"
			}
			if why := x.Inactive(now); why != "" {
				status = why
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.Username, x.Role, x.Kind(), contract, how, status)
		}
		tw.Flush()
	}
	return nil
}

// staffErr turns bad input into a usage error (exit 2) naming the flag.
func staffErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "invalid") {
		return &usageError{msg[i+2:]}
	}
	return err
}

// runAudit is `ferry audit verify | checkpoint`.
func runAudit(ctx context.Context, e env, args []string) error {
	const use = "usage: ferry audit verify | ferry audit checkpoint"
	if len(args) == 0 || (args[0] != "verify" && args[0] != "checkpoint") {
		return &usageError{use}
	}
	return withApp(ctx, e, "audit "+args[0], args[1:], func(a *app) error {
		if args[0] == "checkpoint" {
			c, written, err := a.trail.Checkpoint(ctx)
			if err != nil {
				return err
			}
			if !written {
				fmt.Fprintf(e.stdout, "audit trail: nothing new since the last checkpoint (%d rows)\n", c.Seq)
				return nil
			}
			fmt.Fprintf(e.stdout, "audit checkpoint written: %d rows, head %x…, to %s\n", c.Seq, c.Head[:8], a.trail.Target().Describe())
			return nil
		}
		rep, err := a.trail.Verify(ctx)
		if err != nil {
			return err
		}
		printReport(e, rep)
		if !rep.OK() {
			return errAuditBroken
		}
		return nil
	})
}

var errAuditBroken = fmt.Errorf("audit trail verification failed")

func printReport(e env, rep audit.Report) {
	latest := "none"
	if rep.Latest != nil {
		latest = fmt.Sprintf("row %d, signed %s", rep.Latest.Seq, rep.Latest.At.Format("2006-01-02 15:04:05 UTC"))
	}
	fmt.Fprintf(e.stdout, "audit trail: %d rows; %d signed checkpoints in %s (newest: %s)\n", rep.Rows, rep.Checkpoints, rep.Target, latest)
	if rep.OK() {
		fmt.Fprintln(e.stdout, "OK: the chain is whole and matches every checkpoint")
		return
	}
	if rep.FirstBroken > 0 {
		fmt.Fprintf(e.stdout, "BROKEN: first broken row %d\n", rep.FirstBroken)
	} else {
		fmt.Fprintln(e.stdout, "BROKEN")
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(e.stdout, "  -", p.What)
	}
}

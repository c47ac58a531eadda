package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"ferry/internal/feedclient"
)

// runExport is `ferry export`: pull a feed to a file, for scripts and admins.
func runExport(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	url := fs.String("url", "", "feed URL from the Ferry app (…/odata/SOURCE/ or …/export/SOURCE/issues.csv)")
	token := fs.String("token", "", "personal access token (fry_…); or set FERRY_TOKEN")
	format := fs.String("format", "csv", "csv or ndjson")
	outPath := fs.String("out", "-", "output file, - for standard output")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return &usageError{err.Error()}
	}
	if *token == "" {
		*token = e.getenv("FERRY_TOKEN")
	}
	if *url == "" {
		return &usageError{"export: --url is required"}
	}
	if *format != "csv" && *format != "ndjson" {
		return &usageError{fmt.Sprintf("export: --format %q: use csv or ndjson", *format)}
	}
	var out io.Writer = e.stdout
	var f *os.File
	if *outPath != "-" {
		var err error
		// Write to a temp file and rename, so a failed export leaves no
		// half-written file behind.
		f, err = os.CreateTemp(dirOf(*outPath), ".ferry-export-*")
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer os.Remove(f.Name())
		out = f
	}
	var progress io.Writer
	if pf, ok := e.stderr.(*os.File); ok && !*quiet && term.IsTerminal(int(pf.Fd())) {
		progress = e.stderr
	}
	rows, err := feedclient.Run(ctx, feedclient.Options{URL: *url, Token: *token, Format: *format, Out: out, Progress: progress, HTTP: feedclient.NewHTTP()})
	if err != nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("export: %w", err)
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := os.Rename(f.Name(), *outPath); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(e.stderr, "wrote %d rows to %s\n", rows, *outPath)
	}
	return nil
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i+1]
		}
	}
	return "."
}

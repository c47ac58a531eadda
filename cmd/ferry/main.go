// Command ferry is the Jira → BI connector backend. All behaviour lives in
// internal/cli so that tests can call it exactly as the binary does.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"ferry/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(cli.ExitCode(err))
	}
}

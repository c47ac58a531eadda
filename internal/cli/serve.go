package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"ferry/internal/jobs"
	"ferry/internal/server"
)

func runServe(ctx context.Context, e env, args []string) error {
	var printConfig bool
	cfg, _, err := loadConfig(e, "serve", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&printConfig, "print-config", false, "print the effective configuration (secrets redacted) and exit")
	})
	if err != nil {
		return err
	}
	if printConfig {
		cfg.Redacted(e.stdout)
		return nil
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return serve(ctx, a, ln)
}

// serve runs HTTP and jobs until ctx ends, then stops HTTP first (so no new
// work arrives) and jobs second.
func serve(ctx context.Context, a *app, ln net.Listener) error {
	runner, err := jobs.Start(ctx, a.db, a.jobs, a.log)
	if err != nil {
		ln.Close()
		return fmt.Errorf("start jobs: %w", err)
	}
	srv := &http.Server{
		Handler:           server.NewServer(a.deps()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// No WriteTimeout: feeds stream for as long as the client reads;
		// a stalled client is cut by the export's own per-write deadline.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       nil,
	}
	scheme := "http"
	if a.cfg.TLSCert != "" {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	a.log.Info("ferry listening", "url", scheme+"://"+ln.Addr().String(), "database", string(a.db.Dialect), "version", Version)
	errc := make(chan error, 1)
	go func() {
		if a.cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, a.cfg.TLSCert, a.cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		runner.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	herr := srv.Shutdown(sctx)
	jerr := runner.Stop(sctx)
	if errors.Is(herr, http.ErrServerClosed) {
		herr = nil
	}
	return errors.Join(herr, jerr)
}

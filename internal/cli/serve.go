package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"ferry/internal/config"
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
	// TLS files are read and checked before anything is written: a typo in a
	// path must not leave a migrated database and a new key file behind.
	cert, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	a.tlsCert = cert
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if cfg.MetricsAddr != "off" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("FERRY_METRICS_ADDR: listen on %s: %w", cfg.MetricsAddr, err)
		}
		a.metricsLn = mln
	}
	cln, err := net.Listen("tcp", cfg.ConsoleAddr)
	if err != nil {
		ln.Close()
		if a.metricsLn != nil {
			a.metricsLn.Close()
		}
		return fmt.Errorf("FERRY_CONSOLE_ADDR: listen on %s: %w", cfg.ConsoleAddr, err)
	}
	a.consoleLn = cln
	if cfg.ConsoleURL == "" {
		// A :0 port is known only now; enrolment links and the sign-on
		// redirect need the real one.
		a.cfg = withConsoleURL(a.cfg, cln)
		a.wireConsole(a.gate)
	}
	return serve(ctx, a, ln)
}

// withConsoleURL fills in the console's URL from its listener when
// FERRY_CONSOLE_URL is not set.
func withConsoleURL(cfg config.Config, cln net.Listener) config.Config {
	if cfg.ConsoleURL == "" {
		scheme := "http"
		if cfg.TLSCert != "" {
			scheme = "https"
		}
		cfg.ConsoleURL = scheme + "://" + cln.Addr().String()
	}
	return cfg
}

// serve runs HTTP, the staff console (on a.consoleLn) and jobs until ctx
// ends, then stops HTTP first (so no new work arrives) and jobs second.
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
	if a.tlsCert != nil {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*a.tlsCert}}
	}
	errc := make(chan error, 3)
	var msrv *http.Server
	metrics := "off"
	if a.metricsLn != nil {
		msrv = &http.Server{Handler: server.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		metrics = "http://" + a.metricsLn.Addr().String() + "/metrics"
		go func() { errc <- msrv.Serve(a.metricsLn) }()
	}
	a.log.Info("ferry listening", "url", scheme+"://"+ln.Addr().String(), "metrics", metrics, "database", string(a.db.Dialect), "version", Version)
	run := func(s *http.Server, l net.Listener) {
		if a.tlsCert != nil {
			errc <- s.ServeTLS(l, "", "")
		} else {
			errc <- s.Serve(l)
		}
	}
	go run(srv, ln)
	var csrv *http.Server
	if a.consoleLn != nil {
		csrv = &http.Server{Handler: server.NewConsoleServer(a.deps(), a.console), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
		if a.tlsCert != nil {
			csrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*a.tlsCert}}
		}
		a.log.Info("staff console listening", "url", a.cfg.ConsoleBaseURL()+"/console/")
		go run(csrv, a.consoleLn)
	}
	select {
	case err := <-errc:
		srv.Close()
		if msrv != nil {
			msrv.Close()
		}
		if csrv != nil {
			csrv.Close()
		}
		runner.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	herr := srv.Shutdown(sctx)
	if msrv != nil {
		msrv.Shutdown(sctx)
	}
	if csrv != nil {
		if err := csrv.Shutdown(sctx); !errors.Is(err, http.ErrServerClosed) {
			herr = errors.Join(herr, err)
		}
	}
	jerr := runner.Stop(sctx)
	// A last checkpoint, so the rows of this run are covered at once.
	if _, _, err := a.trail.Checkpoint(sctx); err != nil {
		a.log.Error("audit checkpoint at shutdown", "err", err)
	}
	if errors.Is(herr, http.ErrServerClosed) {
		herr = nil
	}
	return errors.Join(herr, jerr)
}

// loadTLS reads FERRY_TLS_CERT and FERRY_TLS_KEY (nil when TLS is off) and
// names the file at fault: a certificate that does not parse is the
// certificate's problem, a key that does not parse or fit it is the key's.
func loadTLS(cfg config.Config) (*tls.Certificate, error) {
	if cfg.TLSCert == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(cfg.TLSCert)
	if err != nil {
		return nil, &config.Error{Var: "FERRY_TLS_CERT", Reason: fmt.Sprintf("cannot read %s: %v", cfg.TLSCert, pathErr(err))}
	}
	keyPEM, err := os.ReadFile(cfg.TLSKey)
	if err != nil {
		return nil, &config.Error{Var: "FERRY_TLS_KEY", Reason: fmt.Sprintf("cannot read %s: %v", cfg.TLSKey, pathErr(err))}
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, &config.Error{Var: "FERRY_TLS_CERT", Reason: cfg.TLSCert + " holds no PEM certificate"}
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, &config.Error{Var: "FERRY_TLS_CERT", Reason: fmt.Sprintf("%s: %v", cfg.TLSCert, err)}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &config.Error{Var: "FERRY_TLS_KEY", Reason: fmt.Sprintf("%s does not hold the private key of %s: %v", cfg.TLSKey, cfg.TLSCert, err)}
	}
	return &pair, nil
}

// pathErr drops the path from an *fs.PathError (the message already names it).
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

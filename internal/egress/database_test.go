package egress

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The database category reaches exactly the servers of FERRY_DATABASE_URL.
// They may be on a private network or loopback (where databases live), never
// on a metadata address, and never anything else, whatever the name resolves
// to. This is what pgx dials through (store.Options.Dial).
func TestDatabaseDialsOnlyTheConfiguredServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dns := &fakeDNS{t: t, names: map[string][]netip.Addr{
		"db.internal":   addrs("10.1.2.3"),
		"meta.internal": addrs("169.254.169.254"),
	}}
	// No AllowLoopback: the database's own address policy applies.
	g, err := New(Config{Region: "us-west-2", DatabaseHosts: []string{ln.Addr().String(), "db.internal:5432", "meta.internal:5432"}}, WithResolver(dns))
	if err != nil {
		t.Fatal(err)
	}
	before := counter(t, Database, "allowed")
	c, err := g.DialContext(t.Context(), Database, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("configured loopback database refused: %v", err)
	}
	c.Close()
	if counter(t, Database, "allowed")-before != 1 {
		t.Error("database dial not counted")
	}
	refusedBefore := counter(t, Database, "refused")
	for addr, reason := range map[string]string{
		"127.0.0.1:1":         "not an allowed destination",
		"10.9.9.9:5432":       "not an allowed destination",
		"169.254.169.254:80":  "cloud metadata service",
		"meta.internal:5432":  "cloud metadata service",
		"other.internal:5432": "not an allowed destination",
	} {
		_, err := g.DialContext(t.Context(), Database, "tcp", addr)
		wantRefused(t, err, reason)
	}
	if counter(t, Database, "refused")-refusedBefore != 5 {
		t.Error("database refusals not counted")
	}
	// The configured server on another category is refused.
	_, err = g.DialContext(t.Context(), SMTP, "tcp", ln.Addr().String())
	wantRefused(t, err, "loopback address")
	// Private addresses stay refused for every other category.
	if err := CheckAddr(netip.MustParseAddr("10.1.2.3"), false); err == nil {
		t.Fatal("CheckAddr allows a private address")
	}
}

func TestDatabaseConfigurationIsChecked(t *testing.T) {
	for _, c := range []struct {
		hosts []string
		want  string
	}{
		{[]string{"169.254.169.254:5432"}, "FERRY_DATABASE_URL: 169.254.169.254 is a cloud metadata service"},
		{[]string{"[fe80::1]:5432"}, "FERRY_DATABASE_URL"},
		{[]string{"224.0.0.1:5432"}, "multicast"},
		{[]string{"mydb.abc123.eu-west-1.rds.amazonaws.com:5432"}, "FERRY_DATABASE_URL: database mydb.abc123.eu-west-1.rds.amazonaws.com is in eu-west-1, but FERRY_REGION is us-west-2"},
		{[]string{"no-port"}, "host:port"},
	} {
		_, err := New(Config{Region: "us-west-2", DatabaseHosts: c.hosts})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.hosts, err, c.want)
		}
	}
	if _, err := New(Config{Region: "us-west-2", DatabaseHosts: []string{"mydb.abc123.us-west-2.rds.amazonaws.com:5432", "10.0.0.5:5432"}}); err != nil {
		t.Fatalf("a database in the region refused: %v", err)
	}
}

// A unix socket is dialled only in a directory FERRY_DATABASE_URL names.
func TestDatabaseUnixSocketOnlyInTheConfiguredDirectory(t *testing.T) {
	dir, err := os.MkdirTemp("", "pgsock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, ".s.PGSQL.5432")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	g, err := New(Config{Region: "us-west-2", DatabaseHosts: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.DialContext(t.Context(), Database, "unix", sock)
	if err != nil {
		t.Fatalf("configured socket refused: %v", err)
	}
	c.Close()
	for _, addr := range []string{"/var/run/other/.s.PGSQL.5432", dir + "/sub/.s.PGSQL.5432"} {
		_, err := g.DialContext(t.Context(), Database, "unix", addr)
		if !errors.Is(err, ErrDestinationRefused) {
			t.Errorf("%s: %v, want refused", addr, err)
		}
	}
	if _, err := g.DialContext(t.Context(), SMTP, "unix", sock); !errors.Is(err, ErrDestinationRefused) {
		t.Errorf("unix socket on the SMTP category: %v", err)
	}
}

package export

import (
	"net/netip"
	"testing"

	"ferry/internal/apperr"
)

// TestParseNetworksRefusesWhatIsNotARange: each malformed entry is refused,
// naming the field and the entry; good ones come back canonical.
func TestParseNetworksRefusesWhatIsNotARange(t *testing.T) {
	for _, bad := range []string{
		"203.0.113.0/33", "203.0.113.1/24", "10.0.0.0/-1", "300.1.1.1", "10.0.0", "2001:db8::/129",
		"2001:db8::1/32", "fe80::1%eth0", "fe80::%eth0/64", "example.com", "10.0.0.0/8/8", "::ffff:10.0.0.0/80",
		"10.0.0.0 /8", "*",
	} {
		nets, err := ParseNetworks([]string{"198.51.100.0/24", bad})
		var ae *apperr.Error
		if err == nil || apperr.CodeOf(err) != apperr.EINVALID || !asAppErr(err, &ae) || ae.Field != "allowedNetworks" {
			t.Errorf("ParseNetworks(%q) = %v, %v: want a 400 naming allowedNetworks", bad, nets, err)
		}
	}
	nets, err := ParseNetworks([]string{" 203.0.113.0/24 ", "2001:db8::/32", "198.51.100.7", "::ffff:192.0.2.0/120", "", "203.0.113.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nets {
		got = append(got, n.String())
	}
	want := []string{"203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32", "192.0.2.0/24"}
	if len(got) != len(want) {
		t.Fatalf("ParseNetworks = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ParseNetworks = %v, want %v", got, want)
		}
	}
	for addr, ok := range map[string]bool{"203.0.113.77": true, "::ffff:203.0.113.77": true, "192.0.2.9": true, "198.51.100.8": false, "2001:db9::1": false} {
		if allows(nets, netip.MustParseAddr(addr)) != ok {
			t.Errorf("allows(%s) = %v", addr, !ok)
		}
	}
	if !allows(nil, netip.MustParseAddr("192.0.2.1")) {
		t.Error("an empty allowlist refuses")
	}
}

func asAppErr(err error, ae **apperr.Error) bool {
	e, ok := err.(*apperr.Error)
	*ae = e
	return ok
}

// FuzzParseNetworks: accepted lists come back in a form that parses to the
// same ranges; nothing panics.
func FuzzParseNetworks(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1", "::ffff:1.2.3.0/120", "1.2.3.4/33", "fe80::1%x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nets, err := ParseNetworks([]string{s})
		if err != nil {
			return
		}
		var again []string
		for _, n := range nets {
			again = append(again, n.String())
		}
		back, err := ParseNetworks(again)
		if err != nil || len(back) != len(nets) {
			t.Fatalf("%q → %v → %v, %v", s, again, back, err)
		}
		for i := range back {
			if back[i] != nets[i] {
				t.Fatalf("%q → %v → %v", s, nets, back)
			}
		}
	})
}

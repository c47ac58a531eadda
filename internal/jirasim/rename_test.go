package jirasim

import (
	"context"
	"strings"
	"testing"
)

// TestRenameSendsInstalledWithTheNewURLAndTheSameSecret: Atlassian renames
// a site by sending installed with the new baseUrl and everything else as
// before.
func TestRenameSendsInstalledWithTheNewURLAndTheSameSecret(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 2, Seed: 4})
	app := newTestApp(t, srv.URL, "ferry")
	in := app.install(s)
	renamed := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	if err := s.Rename(context.Background(), renamed); err != nil {
		t.Fatal(err)
	}
	ev := app.lastEvent()
	if ev.Event != "installed" || ev.Err != "" || ev.Body["baseUrl"] != renamed || ev.Body["displayUrl"] != renamed {
		t.Fatalf("rename callback: %+v", ev)
	}
	for _, k := range []string{"clientKey", "sharedSecret", "oauthClientId"} {
		if want := map[string]string{"clientKey": in.ClientKey, "sharedSecret": in.SharedSecret, "oauthClientId": in.OAuthClientID}[k]; ev.Body[k] != want {
			t.Errorf("%s changed in the rename callback: %v", k, ev.Body[k])
		}
	}
	if got, _ := s.Installation("ferry"); got.BaseURL != renamed || got.SharedSecret != in.SharedSecret || s.BaseURL() != renamed {
		t.Fatalf("after the rename: %+v, site %s", got, s.BaseURL())
	}
}

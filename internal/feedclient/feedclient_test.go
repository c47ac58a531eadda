package feedclient_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ferry/internal/feedclient"
)

func TestFeedURLsAcceptEitherFeed(t *testing.T) {
	for _, in := range []string{
		"https://ferry.example/odata/abcd1234/", "https://ferry.example/odata/abcd1234/Issues?$top=5",
		"https://ferry.example/export/abcd1234/issues.csv",
	} {
		root, csv, err := feedclient.FeedURLs(in)
		if err != nil || root != "https://ferry.example/odata/abcd1234/" || csv != "https://ferry.example/export/abcd1234/issues.csv" {
			t.Errorf("%s → %q %q %v", in, root, csv, err)
		}
	}
	for _, bad := range []string{"ftp://x/odata/abcd1234/", "https://x/other/abcd1234", "nonsense"} {
		if _, _, err := feedclient.FeedURLs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func feed(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, _ := r.BasicAuth(); pw != "fry_good" {
			w.Header().Set("WWW-Authenticate", "Basic")
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"The access token is unknown, revoked or expired."}}`)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, ".csv"):
			w.Header().Set(feedclient.EstimateHeader, "3")
			fmt.Fprint(w, "Key,Summary\r\nA-1,\"two\r\nlines\"\r\nA-2,x\r\nA-3,y\r\n")
		case r.URL.Query().Get("$skiptoken") == "":
			fmt.Fprintf(w, `{"@odata.count":3,"value":[{"Key":"A-1"},{"Key":"A-2"}],"@odata.nextLink":"http://%s%s?$skiptoken=p2"}`, r.Host, r.URL.Path)
		default:
			fmt.Fprint(w, `{"value":[{"Key":"A-3"}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestExportCSVCountsRowsAndCopiesBytes(t *testing.T) {
	srv := feed(t)
	var out, prog bytes.Buffer
	n, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/odata/abcd1234/", Token: "fry_good", Format: "csv",
		Out: &out, Progress: &prog, HTTP: srv.Client()})
	if err != nil || n != 3 {
		t.Fatalf("rows=%d err=%v", n, err)
	}
	if !strings.HasPrefix(out.String(), "Key,Summary\r\nA-1,\"two\r\nlines\"") {
		t.Fatalf("output %q", out.String())
	}
	if !strings.Contains(prog.String(), "3 rows") {
		t.Fatalf("progress %q", prog.String())
	}
}

func TestExportNDJSONFollowsNextLinks(t *testing.T) {
	srv := feed(t)
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	n, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/export/abcd1234/issues.csv", Token: "fry_good", Format: "ndjson",
		Out: &out, HTTP: srv.Client(), Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	if err != nil || n != 3 || out.String() != "{\"Key\":\"A-1\"}\n{\"Key\":\"A-2\"}\n{\"Key\":\"A-3\"}\n" {
		t.Fatalf("rows=%d err=%v out=%q", n, err, out.String())
	}
}

func TestExportReportsTheServersMessage(t *testing.T) {
	srv := feed(t)
	_, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/odata/abcd1234/", Token: "fry_bad", Format: "csv", Out: &bytes.Buffer{}, HTTP: srv.Client()})
	if err == nil || !strings.Contains(err.Error(), "unknown, revoked or expired") || strings.Contains(err.Error(), "fry_bad") {
		t.Fatalf("err = %v", err)
	}
	if _, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/odata/abcd1234/", Token: "fry_good", Format: "xml", Out: &bytes.Buffer{}, HTTP: srv.Client()}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

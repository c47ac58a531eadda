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

// feed serves a CSV feed and a two-page OData feed, and records the OData
// requests it was sent.
func feed(t *testing.T) (*httptest.Server, *[]string) {
	var asked []string
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
			fmt.Fprint(w, "Key,Summary\r\nA-1,\"two\r\nlines\"\r\nA-2,x\r\nA-3,\r\n")
		case r.URL.Query().Get("$skiptoken") == "":
			asked = append(asked, r.URL.RequestURI())
			count := ""
			if r.URL.Query().Get("$count") == "true" {
				count = `"@odata.count":3,`
			}
			fmt.Fprintf(w, `{"@odata.context":"x",%s"value":[{"Key":"A-1","Labels":["a;b","=c"],"Points":2.5},{"Key":"A-2","Labels":[],"Points":null}],"@odata.nextLink":"http://%s%s?$skiptoken=p2"}`, count, r.Host, r.URL.Path)
		default:
			asked = append(asked, r.URL.RequestURI())
			fmt.Fprint(w, `{"value":[{"Key":"A-3","Labels":["x"],"Points":1}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &asked
}

func TestExportCSVFromTheCSVFeedCopiesBytes(t *testing.T) {
	srv, _ := feed(t)
	var out, prog bytes.Buffer
	n, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/export/abcd1234/issues.csv", Token: "fry_good", Format: "csv",
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

// TestExportReadsTheODataFeedItIsGiven: an OData URL is read as given —
// its entity set and options, every nextLink, no $count added — whether
// the output is NDJSON or CSV; the service root means Issues.
func TestExportReadsTheODataFeedItIsGiven(t *testing.T) {
	srv, asked := feed(t)
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	n, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/odata/abcd1234/Changelog?$filter=Field%20eq%20'status'", Token: "fry_good", Format: "ndjson",
		Out: &out, HTTP: srv.Client(), Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	want := "{\"Key\":\"A-1\",\"Labels\":[\"a;b\",\"=c\"],\"Points\":2.5}\n{\"Key\":\"A-2\",\"Labels\":[],\"Points\":null}\n{\"Key\":\"A-3\",\"Labels\":[\"x\"],\"Points\":1}\n"
	if err != nil || n != 3 || out.String() != want {
		t.Fatalf("rows=%d err=%v out=%q", n, err, out.String())
	}
	if len(*asked) != 2 || (*asked)[0] != "/odata/abcd1234/Changelog?$filter=Field%20eq%20'status'" {
		t.Fatalf("asked %q", *asked)
	}
	*asked = nil
	out.Reset()
	n, err = feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/odata/abcd1234/", Token: "fry_good", Format: "csv", Out: &out, HTTP: srv.Client()})
	if err != nil || n != 3 || out.String() != "Key,Labels,Points\r\nA-1,a\\;b; '=c,2.5\r\nA-2,,\r\nA-3,x,1\r\n" {
		t.Fatalf("csv rows=%d err=%v out=%q", n, err, out.String())
	}
	if len(*asked) != 2 || (*asked)[0] != "/odata/abcd1234/Issues" {
		t.Fatalf("asked %q", *asked)
	}
}

func TestExportNDJSONFromTheCSVFeed(t *testing.T) {
	srv, _ := feed(t)
	var out bytes.Buffer
	n, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/export/abcd1234/issues.csv", Token: "fry_good", Format: "ndjson", Out: &out, HTTP: srv.Client()})
	if err != nil || n != 3 || out.String() != "{\"Key\":\"A-1\",\"Summary\":\"two\\r\\nlines\"}\n{\"Key\":\"A-2\",\"Summary\":\"x\"}\n{\"Key\":\"A-3\",\"Summary\":\"\"}\n" {
		t.Fatalf("rows=%d err=%v out=%q", n, err, out.String())
	}
}

func TestExportReportsTheServersMessage(t *testing.T) {
	srv, _ := feed(t)
	_, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/odata/abcd1234/", Token: "fry_bad", Format: "csv", Out: &bytes.Buffer{}, HTTP: srv.Client()})
	if err == nil || !strings.Contains(err.Error(), "unknown, revoked or expired") || strings.Contains(err.Error(), "fry_bad") {
		t.Fatalf("err = %v", err)
	}
	if _, err := feedclient.Run(context.Background(), feedclient.Options{URL: srv.URL + "/odata/abcd1234/", Token: "fry_good", Format: "xml", Out: &bytes.Buffer{}, HTTP: srv.Client()}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

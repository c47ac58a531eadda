// Package feedclient is `ferry export`: a small client for scripts and admins
// that pulls a Ferry feed to a file as CSV or NDJSON, with a progress line on
// a terminal. It runs on the user's machine and talks only to the feed URL it
// is given, never to a third party; it keeps nothing but the output file.
package feedclient

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// EstimateHeader carries Jira's approximate row count on CSV feeds, for ETAs.
const EstimateHeader = "Ferry-Estimated-Rows"

// Options says what to fetch and where to put it.
type Options struct {
	URL      string // the feed URL from the app: /odata/{source}/… or /export/{source}/….csv
	Token    string // a personal access token (fry_…)
	Format   string // csv | ndjson
	Out      io.Writer
	Progress io.Writer // nil: quiet
	HTTP     *http.Client
	Now      func() time.Time
}

var feedPath = regexp.MustCompile(`^(.*)/(odata|export)/([a-z0-9]{4,32})(/.*)?$`)

// FeedURLs derives the OData service root and the Issues CSV URL from any
// feed URL of a data source.
func FeedURLs(raw string) (odataRoot, csvURL string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("--url %q is not an http(s) URL", raw)
	}
	m := feedPath.FindStringSubmatch(u.Path)
	if m == nil {
		return "", "", fmt.Errorf("--url %q is not a Ferry feed URL (expected …/odata/SOURCE/ or …/export/SOURCE/issues.csv)", raw)
	}
	base := u.Scheme + "://" + u.Host + m[1]
	return base + "/odata/" + m[3] + "/", base + "/export/" + m[3] + "/issues.csv", nil
}

// Run fetches the feed and returns how many rows were written.
func Run(ctx context.Context, o Options) (int, error) {
	if o.Token == "" {
		return 0, errors.New("--token is required (create one in the Ferry app in Jira)")
	}
	root, csvURL, err := FeedURLs(o.URL)
	if err != nil {
		return 0, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &progress{w: o.Progress, now: o.Now, start: o.Now()}
	switch o.Format {
	case "csv", "":
		return runCSV(ctx, o, csvURL, p)
	case "ndjson":
		return runNDJSON(ctx, o, root+"Issues?$count=true", p)
	default:
		return 0, fmt.Errorf("--format %q: use csv or ndjson", o.Format)
	}
}

func get(ctx context.Context, o Options, u string, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("ferry", o.Token)
	req.Header.Set("Accept", accept)
	resp, err := o.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("fetch feed: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		return nil, fmt.Errorf("feed answered %s: %s", resp.Status, serverMessage(b))
	}
	return resp, nil
}

// serverMessage extracts the human message from an OData or problem+json error.
func serverMessage(b []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(b, &e) == nil {
		if e.Error.Message != "" {
			return e.Error.Message
		}
		if e.Detail != "" {
			return e.Detail
		}
	}
	return strings.TrimSpace(string(b))
}

func runCSV(ctx context.Context, o Options, u string, p *progress) (int, error) {
	resp, err := get(ctx, o, u, "text/csv")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if n, err := strconv.Atoi(resp.Header.Get(EstimateHeader)); err == nil {
		p.total = n
	}
	// Parse while copying so that rows are counted exactly (quoted fields may
	// hold line breaks) and a truncated stream is noticed.
	r := csv.NewReader(io.TeeReader(resp.Body, o.Out))
	r.FieldsPerRecord = -1
	r.LazyQuotes = false
	rows := -1 // the header is not a row
	for {
		_, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return max(rows, 0), fmt.Errorf("feed stream broke after %d rows: %w", max(rows, 0), err)
		}
		rows++
		p.tick(rows)
	}
	p.done(max(rows, 0))
	return max(rows, 0), nil
}

func runNDJSON(ctx context.Context, o Options, u string, p *progress) (int, error) {
	out := bufio.NewWriter(o.Out)
	rows := 0
	for page := 0; u != ""; page++ {
		resp, err := get(ctx, o, u, "application/json")
		if err != nil {
			return rows, err
		}
		var body struct {
			Count    *int              `json:"@odata.count"`
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"@odata.nextLink"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			return rows, fmt.Errorf("page %d: malformed OData answer: %w", page+1, err)
		}
		if body.Count != nil {
			p.total = *body.Count
		}
		for _, v := range body.Value {
			out.Write(v)
			out.WriteByte('\n')
			rows++
		}
		p.tick(rows)
		u = body.NextLink
	}
	if err := out.Flush(); err != nil {
		return rows, err
	}
	p.done(rows)
	return rows, nil
}

// progress prints "rows, rows/s, ETA" on one self-overwriting line.
type progress struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	last  time.Time
	total int
}

func (p *progress) tick(rows int) {
	if p.w == nil {
		return
	}
	now := p.now()
	if now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	p.print(rows, now)
}

func (p *progress) print(rows int, now time.Time) {
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(rows) / el
	}
	line := fmt.Sprintf("\r%d rows  %.0f rows/s", rows, rate)
	if p.total > 0 && rate > 0 && rows < p.total {
		eta := time.Duration(float64(p.total-rows)/rate) * time.Second
		line += fmt.Sprintf("  ~%d total  ETA %s", p.total, eta.Round(time.Second))
	}
	fmt.Fprint(p.w, line+"   ")
}

func (p *progress) done(rows int) {
	if p.w == nil {
		return
	}
	p.print(rows, p.now())
	fmt.Fprintln(p.w)
}

// NewHTTP returns the client `ferry export` uses: no overall timeout (large
// exports stream for a long time) but bounded connection set-up.
func NewHTTP() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 5 * time.Minute
	return &http.Client{Transport: t}
}

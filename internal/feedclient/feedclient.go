// Package feedclient is `ferry export`: a small client for scripts and admins
// that pulls a Ferry feed to a file as CSV or NDJSON, with a progress line on
// a terminal. It reads the feed it is given — an OData URL (its entity set
// and query options as they are, every nextLink followed) or a CSV URL —
// and writes it in the format asked for. It talks only to that URL, never
// to a third party; it keeps nothing but the output file.
package feedclient

import (
	"bufio"
	"bytes"
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

	"ferry/internal/export"
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
	root, _, err := FeedURLs(o.URL)
	if err != nil {
		return 0, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Format != "csv" && o.Format != "ndjson" && o.Format != "" {
		return 0, fmt.Errorf("--format %q: use csv or ndjson", o.Format)
	}
	p := &progress{w: o.Progress, now: o.Now, start: o.Now()}
	u, _ := url.Parse(o.URL)
	if strings.Contains(u.Path, "/export/") {
		if o.Format == "ndjson" {
			return csvToNDJSON(ctx, o, o.URL, p)
		}
		return runCSV(ctx, o, o.URL, p)
	}
	// An OData URL: the service root means its Issues set; anything else is
	// read as given, options and all.
	feedURL := o.URL
	if strings.TrimSuffix(u.Path, "/")+"/" == mustPath(root) {
		feedURL = root + "Issues"
		if u.RawQuery != "" {
			feedURL += "?" + u.RawQuery
		}
	}
	if o.Format == "ndjson" {
		return runNDJSON(ctx, o, feedURL, p, writeNDJSON)
	}
	return runNDJSON(ctx, o, feedURL, p, nil)
}

func mustPath(raw string) string {
	u, _ := url.Parse(raw)
	return u.Path
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

// rowWriter writes one OData row (raw JSON) to out.
type rowWriter func(out *bufio.Writer, row json.RawMessage) error

func writeNDJSON(out *bufio.Writer, row json.RawMessage) error {
	out.Write(row)
	return out.WriteByte('\n')
}

// runNDJSON walks an OData feed through its nextLinks and writes each row
// with write (nil: as CSV, columns in the order of the first row).
func runNDJSON(ctx context.Context, o Options, u string, p *progress, write rowWriter) (int, error) {
	out := bufio.NewWriter(o.Out)
	if write == nil {
		write = (&odataCSV{}).write
	}
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
			if err := write(out, v); err != nil {
				return rows, err
			}
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

// odataCSV writes OData rows as CSV: the header is the first row's
// properties in their order (as $select or the feed's $metadata order
// them); values as Ferry's CSV feed writes them — lists joined by "; "
// with "\\" and "\\;" escaped, text guarded against running as a formula,
// null empty.
type odataCSV struct {
	cols []string
	w    *csv.Writer
}

func (c *odataCSV) write(out *bufio.Writer, row json.RawMessage) error {
	keys, vals, err := orderedObject(row)
	if err != nil {
		return fmt.Errorf("malformed OData row: %w", err)
	}
	if c.w == nil {
		c.w = csv.NewWriter(out)
		c.w.UseCRLF = true
		for _, k := range keys {
			if !strings.Contains(k, "@") { // control information is not a column
				c.cols = append(c.cols, k)
			}
		}
		if err := c.w.Write(c.cols); err != nil {
			return err
		}
	}
	byKey := make(map[string]json.RawMessage, len(keys))
	for i, k := range keys {
		byKey[k] = vals[i]
	}
	rec := make([]string, len(c.cols))
	for i, k := range c.cols {
		rec[i] = csvValue(byKey[k])
	}
	if err := c.w.Write(rec); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// orderedObject reads a JSON object's members in their order.
func orderedObject(b []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, errors.New("not an object")
	}
	var keys []string
	var vals []json.RawMessage
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals, nil
}

func csvValue(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		json.Unmarshal(v, &s)
		return export.GuardCell(s)
	case '[':
		var items []json.RawMessage
		json.Unmarshal(v, &items)
		parts := make([]string, 0, len(items))
		for _, it := range items {
			var s string
			if json.Unmarshal(it, &s) != nil {
				s = string(it)
			}
			parts = append(parts, s)
		}
		return export.GuardCell(export.JoinMultiValue(parts))
	}
	return string(v) // numbers and Booleans as OData wrote them
}

// csvToNDJSON reads a CSV feed and writes each record as a JSON object of
// the header's names and the record's text (an empty field is "").
func csvToNDJSON(ctx context.Context, o Options, u string, p *progress) (int, error) {
	resp, err := get(ctx, o, u, "text/csv")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if n, err := strconv.Atoi(resp.Header.Get(EstimateHeader)); err == nil {
		p.total = n
	}
	r := bufio.NewReader(resp.Body)
	header, err := readRecord(r)
	if err != nil {
		return 0, fmt.Errorf("CSV feed: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\uFEFF")
	}
	out := bufio.NewWriter(o.Out)
	rows := 0
	for {
		rec, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rows, fmt.Errorf("feed stream broke after %d rows: %w", rows, err)
		}
		var b bytes.Buffer
		b.WriteByte('{')
		for i, name := range header {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(name)
			b.Write(k)
			b.WriteByte(':')
			v := ""
			if i < len(rec) {
				v = rec[i]
			}
			vb, _ := json.Marshal(v)
			b.Write(vb)
		}
		b.WriteByte('}')
		if err := writeNDJSON(out, b.Bytes()); err != nil {
			return rows, err
		}
		rows++
		p.tick(rows)
	}
	if err := out.Flush(); err != nil {
		return rows, err
	}
	p.done(rows)
	return rows, nil
}

// readRecord reads one RFC 4180 record, keeping every byte of a quoted
// field (encoding/csv turns CR LF inside quotes into LF). io.EOF when no
// record is left.
func readRecord(r *bufio.Reader) ([]string, error) {
	var rec []string
	var field []byte
	quoted, inQuotes, started := false, false, false
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && started {
				if inQuotes {
					return nil, errors.New("a quoted field is not closed")
				}
				return append(rec, string(field)), nil
			}
			return nil, err
		}
		started = true
		switch {
		case inQuotes && c == '"':
			if next, err := r.Peek(1); err == nil && next[0] == '"' {
				r.ReadByte()
				field = append(field, '"')
			} else {
				inQuotes = false
			}
		case inQuotes:
			field = append(field, c)
		case c == '"' && len(field) == 0 && !quoted:
			inQuotes, quoted = true, true
		case c == ',':
			rec, field, quoted = append(rec, string(field)), nil, false
		case c == '\r':
			if next, err := r.Peek(1); err != nil || next[0] == '\n' {
				r.ReadByte()
				return append(rec, string(field)), nil // CR LF, or CR at the end
			}
			field = append(field, c) // a lone CR is data, as encoding/csv reads it
		case c == '\n':
			return append(rec, string(field)), nil
		default:
			field = append(field, c)
		}
	}
}

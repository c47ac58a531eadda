package export

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/export/odata"
	"ferry/internal/jira"
)

// Namespace is the schema namespace of every feed's $metadata.
const Namespace = "Ferry"

// service builds the data model of a data source: the Issues set from the
// selected fields, and Changelog when the source includes it.
func service(src DataSource, known []jira.Field) (odata.Service, []Column) {
	cols := IssueColumns(known, src.Fields)
	issues := odata.EntitySet{Name: TableIssues, EntityType: "Issue", Key: []string{"Key"}}
	for _, c := range cols {
		issues.Properties = append(issues.Properties, odata.Property{Name: c.Name, Type: odata.EdmType(c.Edm),
			Collection: c.Collection, Nullable: !c.NotNull && !c.Collection, Sortable: c.Sortable})
	}
	svc := odata.Service{Namespace: Namespace, Sets: []odata.EntitySet{issues}}
	if hasTable(src, TableChangelog) {
		cl := odata.EntitySet{Name: TableChangelog, EntityType: "ChangeItem", Key: []string{"Id"}}
		for _, c := range ChangelogColumns() {
			cl.Properties = append(cl.Properties, odata.Property{Name: c.Name, Type: odata.EdmType(c.Edm), Nullable: c.Name != "Id"})
		}
		svc.Sets = append(svc.Sets, cl)
	}
	return svc, cols
}

func hasTable(src DataSource, t string) bool {
	for _, x := range src.Tables {
		if x == t {
			return true
		}
	}
	return t == TableIssues
}

func (f *Feeds) serviceRoot(r *http.Request) string {
	return strings.TrimSuffix(f.BaseURL, "/") + "/odata/" + r.PathValue("source")
}

// HandleOData serves GET /odata/{source}/{rest...}: the service document,
// $metadata, the entity sets and their /$count.
func (f *Feeds) HandleOData() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := r.PathValue("rest")
		fr, err := f.resolve(r)
		if err != nil {
			f.writeFeedError(w, r, err)
			return
		}
		svc, cols := service(fr.source, fr.fields)
		w.Header().Set("Cache-Control", "no-store")
		switch {
		case rest == "":
			odata.SetHeaders(w.Header(), "application/json;odata.metadata=minimal")
			svc.WriteServiceDocument(w, f.serviceRoot(r)+"/$metadata")
		case rest == "$metadata":
			odata.SetHeaders(w.Header(), odata.ContentTypeMetadata)
			svc.WriteMetadata(w)
		default:
			name, count := rest, false
			if n, ok := strings.CutSuffix(rest, "/$count"); ok {
				name, count = n, true
			}
			set, ok := svc.Set(name)
			if !ok {
				f.writeFeedError(w, r, &odata.Error{Status: http.StatusNotFound, Code: "NotFound",
					Message: "This feed has no resource " + strconv.Quote(rest) + "; it offers " + setNames(svc) + "."})
				return
			}
			if err := f.serveSet(w, r, fr, set, cols, count); err != nil {
				f.writeFeedError(w, r, err)
			}
		}
	})
}

func setNames(svc odata.Service) string {
	var names []string
	for _, s := range svc.Sets {
		names = append(names, s.Name)
	}
	return strings.Join(names, " and ")
}

// fieldMap says how each filterable property is searched in JQL.
func fieldMap(set odata.EntitySet, cols []Column, known []jira.Field) odata.FieldMap {
	m := odata.FieldMap{Fields: map[string]odata.JQLField{}}
	if set.Name == TableChangelog {
		m.Fields["IssueId"] = odata.JQLField{Clause: "id"}
		return m
	}
	text := map[string]bool{}
	for _, f := range known {
		if f.Schema != nil && f.Schema.Type == "string" {
			text[f.ID] = true
		}
	}
	for _, c := range cols {
		if c.JQL == "" {
			continue
		}
		m.Fields[c.Name] = odata.JQLField{Clause: c.JQL, Text: text[c.FieldID]}
	}
	return m
}

// serveSet answers one page of an entity set, or its count.
func (f *Feeds) serveSet(w http.ResponseWriter, r *http.Request, fr *feedRequest, set odata.EntitySet, cols []Column, countOnly bool) error {
	ctx := r.Context()
	q, err := odata.ParseQuery(r.URL.RawQuery, set, 0)
	if err != nil {
		return err
	}
	fm := fieldMap(set, cols, fr.fields)
	if q.Filter != nil {
		if fm.Zone, err = f.userZone(ctx, fr.user); err != nil {
			return asUnavailable(err)
		}
	}
	filter := ""
	if q.Filter != nil {
		if filter, err = q.Filter.JQL(fm); err != nil {
			return err
		}
	}
	order, err := odata.JQLOrderBy(q.OrderBy, set, fm)
	if err != nil {
		return err
	}
	jql := combineJQL(fr.source.JQL, filter, order)
	fetch := f.fetcher(fr.user)

	if countOnly {
		n, err := f.count(ctx, fetch, set, jql)
		if err != nil {
			return err
		}
		w.Header().Set("OData-Version", odata.Version)
		w.Header().Set("Content-Type", "text/plain;charset=utf-8")
		w.Write([]byte(strconv.Itoa(n)))
		return nil
	}

	key, err := f.skiptokenKey(ctx, fr.inst.TenantID)
	if err != nil {
		return err
	}
	var oc odata.Cursor
	if q.SkipToken != "" {
		if oc, err = odata.DecodeCursor(key, q); err != nil {
			return err
		}
	}
	cur, err := parseCursor(oc.Resume)
	if err != nil {
		return &odata.Error{Status: http.StatusBadRequest, Code: odata.CodeInvalidSkipToken, Target: "$skiptoken", Message: "invalid $skiptoken: request the first page again"}
	}
	if q.SkipToken == "" && q.Skip > 0 && set.Name == TableIssues {
		if cur, err = fetch.Skip(ctx, jql, cur, q.Skip); err != nil {
			return err
		}
	}
	var total int
	if q.Count {
		if total, err = f.count(ctx, fetch, set, jql); err != nil {
			return err
		}
	}
	limit := f.pageSize()
	if n := preferredPageSize(r.Header.Values("Prefer")); n > 0 && n < limit {
		limit = n
		w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(n))
	}
	if q.Top != nil {
		limit = min(limit, *q.Top-oc.Served)
	}

	// Headers are committed only once Jira has accepted the query (the first
	// rows are in): a query Jira refuses still gets a proper error. After
	// that the response is streaming, and a failure aborts the connection so
	// the client sees a broken payload rather than a silently short page.
	bw := bufio.NewWriterSize(w, 32<<10)
	rw := odata.NewRowWriter(bw, odata.ContextURL(f.serviceRoot(r), set, q), q.Columns(set))
	fetch.OnFirst = func() error {
		odata.SetHeaders(w.Header(), odata.ContentTypeJSON)
		if q.Count {
			return rw.WriteCount(int64(total))
		}
		return nil
	}
	committed := false
	first := fetch.OnFirst
	fetch.OnFirst = func() error { committed = true; return first() }
	selected := selectedColumns(q.Columns(set), cols)
	var next Cursor
	if set.Name == TableIssues {
		row := make(odata.Row, len(selected))
		next, err = fetch.StreamRows(ctx, jql, fieldIDs(selected), selected, cur, limit, func(vals []any) error {
			for i, c := range selected {
				row[c.Name] = vals[i]
			}
			return rw.WriteRow(row)
		})
	} else {
		next, err = f.streamChangelogRows(ctx, fetch, jql, cur, limit, skipChangelog(q), func(vals []any) error {
			if q.Top != nil && oc.Served+rw.Rows() >= *q.Top {
				return errTopReached
			}
			row := make(odata.Row, len(vals))
			for i, c := range ChangelogColumns() {
				row[c.Name] = vals[i]
			}
			return rw.WriteRow(row)
		})
	}
	if err == errTopReached {
		next, err = Cursor{Done: true}, nil
	}
	if err != nil && !committed {
		return err // nothing sent yet: answer with a proper error
	}
	if err != nil {
		f.abort(r, err)
	}
	link := ""
	served := oc.Served + rw.Rows()
	if !next.Done && (q.Top == nil || served < *q.Top) && rw.Rows() > 0 {
		link = odata.NextLink(f.serviceRoot(r)+"/"+set.Name, q, odata.EncodeCursor(key, q, odata.Cursor{Resume: encodeCursor(next), Served: served}))
	}
	if err := rw.Close(link); err != nil {
		f.abort(r, err)
	}
	if err := bw.Flush(); err != nil {
		f.abort(r, err)
	}
	return nil
}

// errTopReached stops a changelog page once $top rows were served: history
// rows do not align with the issue-based cursor, and none are needed after.
var errTopReached = errors.New("$top reached")

// preferredPageSize reads the client's "Prefer: odata.maxpagesize=N", the
// standard way for an OData client to ask for smaller pages.
func preferredPageSize(prefs []string) int {
	for _, h := range prefs {
		for _, p := range strings.Split(h, ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(name), "odata.maxpagesize") {
				if n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`)); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return 0
}

// abort ends a response that has already started streaming.
func (f *Feeds) abort(r *http.Request, err error) {
	if r.Context().Err() == nil && f.Log != nil {
		f.Log.WarnContext(r.Context(), "feed stream aborted", "route", r.Pattern, "err", err)
	}
	panic(http.ErrAbortHandler)
}

func (f *Feeds) pageSize() int {
	if f.PageSize > 0 {
		return f.PageSize
	}
	return jira.MaxIDPage
}

// selectedColumns keeps the columns named by props, in props' order.
func selectedColumns(props []odata.Property, cols []Column) []Column {
	by := map[string]Column{}
	for _, c := range cols {
		by[c.Name] = c
	}
	out := make([]Column, 0, len(props))
	for _, p := range props {
		if c, ok := by[p.Name]; ok {
			out = append(out, c)
		}
	}
	return out
}

// fieldIDs is what bulkfetch must return for the columns: only the fields
// asked for, so no more of the customer's data than needed passes through.
func fieldIDs(cols []Column) []string {
	// "key" is asked for explicitly: Jira returns it on every issue, but a
	// stand-in or a future API may not unless it is named.
	seen := map[string]bool{"key": true}
	ids := []string{"key"}
	for _, c := range cols {
		if c.FieldID != "" && !seen[c.FieldID] {
			seen[c.FieldID] = true
			ids = append(ids, c.FieldID)
		}
	}
	return ids
}

// count is the exact number of rows of a set for jql.
func (f *Feeds) count(ctx context.Context, fetch *Fetcher, set odata.EntitySet, jql string) (int, error) {
	if set.Name == TableIssues {
		return fetch.CountIDs(ctx, jql)
	}
	n := 0
	_, err := f.streamChangelogRows(ctx, fetch, jql, Cursor{}, -1, 0, func([]any) error { n++; return nil })
	return n, err
}

func skipChangelog(q odata.Query) int {
	if q.SkipToken == "" {
		return q.Skip
	}
	return 0
}

// streamChangelogRows emits one row per changed field. limit and the cursor
// count issues, not rows: a page ends on an issue boundary so that the
// cursor can resume exactly.
func (f *Feeds) streamChangelogRows(ctx context.Context, fetch *Fetcher, jql string, from Cursor, limit, skip int, emit func([]any) error) (Cursor, error) {
	issues := limit
	if limit > 0 {
		issues = max(1, limit/10) // histories average several rows per issue
	}
	return fetch.StreamChangelogs(ctx, jql, from, issues, func(l jira.IssueChangelog) error {
		issueID, _ := strconv.ParseInt(l.IssueID, 10, 64)
		for _, h := range l.Histories {
			changeID, _ := strconv.ParseInt(h.ID, 10, 64)
			var created any
			if t, err := ParseJiraTime(h.Created); err == nil {
				created = t
			}
			var author any
			if h.Author != nil {
				author = h.Author.DisplayName
			}
			for i, it := range h.Items {
				if skip > 0 {
					skip--
					continue
				}
				vals := []any{l.IssueID + "-" + h.ID + "-" + strconv.Itoa(i), issueID, changeID, created, author,
					it.Field, it.FieldID, deref(it.From), deref(it.FromString), deref(it.To), deref(it.ToString)}
				if err := emit(vals); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// userZone is the time zone JQL uses for the user the feed runs as.
func (f *Feeds) userZone(ctx context.Context, user *jira.Client) (*time.Location, error) {
	me, err := user.Myself(ctx)
	if err != nil {
		return nil, err
	}
	if loc, err := time.LoadLocation(me.TimeZone); err == nil && me.TimeZone != "" {
		return loc, nil
	}
	return time.UTC, nil
}

// HandleCSV serves GET /export/{source}/{table}: issues.csv or changelog.csv,
// streamed from Jira to the client, RFC 4180, UTF-8 (with a BOM for Excel
// when ?bom=1).
func (f *Feeds) HandleCSV() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr, err := f.resolve(r)
		if err != nil {
			f.writeFeedError(w, r, err)
			return
		}
		table := strings.TrimSuffix(strings.ToLower(r.PathValue("table")), ".csv")
		if table != "issues" && !(table == "changelog" && hasTable(fr.source, TableChangelog)) {
			offers := "issues.csv"
			if hasTable(fr.source, TableChangelog) {
				offers += " and changelog.csv"
			}
			f.writeFeedError(w, r, apperr.New(apperr.ENOTFOUND, "This data source has no %q; it offers %s.", r.PathValue("table"), offers))
			return
		}
		ctx := r.Context()
		jql := fr.source.JQL
		fetch := f.fetcher(fr.user)
		if n, err := fr.user.ApproximateCount(ctx, jql); err == nil {
			w.Header().Set("Ferry-Estimated-Rows", strconv.Itoa(n))
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
		w.Header().Set("Content-Disposition", `attachment; filename="`+table+`.csv"`)
		w.Header().Set("Cache-Control", "no-store")
		bw := bufio.NewWriterSize(w, 32<<10)
		bom := r.URL.Query().Get("bom") == "1"
		if table == "issues" {
			svcCols := IssueColumns(fr.fields, fr.source.Fields)
			cw, err := newCSVWriter(bw, svcCols, bom)
			if err != nil {
				return
			}
			_, err = fetch.StreamRows(ctx, jql, fieldIDs(svcCols), svcCols, Cursor{}, -1, cw.writeValues)
			if err == nil {
				err = cw.flush()
			}
			if err != nil {
				f.abort(r, err)
			}
		} else {
			cw, err := newCSVWriter(bw, ChangelogColumns(), bom)
			if err != nil {
				return
			}
			_, err = f.streamChangelogRows(ctx, fetch, jql, Cursor{}, -1, 0, cw.writeValues)
			if err == nil {
				err = cw.flush()
			}
			if err != nil {
				f.abort(r, err)
			}
		}
		if err := bw.Flush(); err != nil {
			f.abort(r, err)
		}
	})
}

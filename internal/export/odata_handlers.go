package export

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ferry/internal/export/odata"
	"ferry/internal/jira"
)

// Namespace is the schema namespace of every feed's $metadata.
const Namespace = "Ferry"

// service builds the data model of a data source: the Issues set from the
// selected fields, then each table the source includes (tables.go), with
// the relations between the sets it holds.
func service(src DataSource, known []jira.Field) (odata.Service, []Column) {
	cols := IssueColumns(known, src.Fields)
	svc := odata.Service{Namespace: Namespace, Sets: []odata.EntitySet{entitySet(TableIssues, "Issue", "Key", cols)}}
	for _, t := range tableList {
		if hasTable(src, t.Name) {
			svc.Sets = append(svc.Sets, t.entitySet())
		}
	}
	for _, t := range tableList {
		if !hasTable(src, t.Name) {
			continue
		}
		for _, r := range t.Refs {
			if hasTable(src, r.Target) {
				svc.Relations = append(svc.Relations, odata.Relation{Name: r.Name, From: t.Name, Property: r.Property,
					To: r.Target, ReferencedProperty: r.ReferencedProperty, Partner: r.Partner})
			}
		}
	}
	return svc, cols
}

func entitySet(name, typ, key string, cols []Column) odata.EntitySet {
	es := odata.EntitySet{Name: name, EntityType: typ, Key: []string{key}}
	for _, c := range cols {
		es.Properties = append(es.Properties, odata.Property{Name: c.Name, Type: odata.EdmType(c.Edm),
			Collection: c.Collection, Nullable: !c.NotNull && !c.Collection, Sortable: c.Sortable})
	}
	return es
}

// columnsOf are the columns of a set: the data source's for Issues, the
// table's own for the others.
func columnsOf(set odata.EntitySet, issueCols []Column) []Column {
	if t := tableNamed(set.Name, false); t != nil {
		return t.Columns
	}
	return issueCols
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
// $metadata, the entity sets, their /$count and single entities by key
// (Issues('PROJ-1')). A trailing slash names the same resource.
func (f *Feeds) HandleOData() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimSuffix(r.PathValue("rest"), "/")
		fr, err := f.resolve(r)
		if err != nil {
			f.writeFeedError(w, r, err)
			return
		}
		svc, cols := f.model(fr)
		w.Header().Set("Cache-Control", "no-store")
		q, qerr := odata.ParseQuery(r.URL.RawQuery, odata.EntitySet{}, 0)
		switch {
		case rest == "":
			if qerr == nil {
				_, qerr = odata.Negotiate(q, r.Header.Get("Accept"))
			}
			if qerr != nil {
				f.writeFeedError(w, r, qerr)
				return
			}
			odata.SetHeaders(w.Header(), "application/json;odata.metadata=minimal")
			svc.WriteServiceDocument(w, f.serviceRoot(r)+"/$metadata")
		case rest == "$metadata":
			if qerr == nil {
				qerr = odata.NegotiateMetadata(q, r.Header.Get("Accept"))
			}
			if qerr != nil {
				f.writeFeedError(w, r, qerr)
				return
			}
			odata.SetHeaders(w.Header(), odata.ContentTypeMetadata)
			svc.WriteMetadata(w)
		default:
			req, err := parseResource(rest, svc)
			if err != nil {
				f.writeFeedError(w, r, err)
				return
			}
			if err := f.serveSet(w, r, fr, req, columnsOf(req.set, cols)); err != nil {
				f.writeFeedError(w, r, err)
			}
		}
	})
}

// resource is what the path after the service root names.
type resource struct {
	set   odata.EntitySet
	count bool   // Set/$count
	key   string // Set(…): the key predicate, without parentheses
	byKey bool
}

func parseResource(rest string, svc odata.Service) (resource, error) {
	name, count := rest, false
	if n, ok := strings.CutSuffix(rest, "/$count"); ok {
		name, count = n, true
	}
	pred, byKey := "", false
	if i := strings.IndexByte(name, '('); i > 0 {
		tail := name[i:]
		end := strings.LastIndexByte(tail, ')')
		if end < 0 {
			return resource{}, &odata.Error{Status: http.StatusBadRequest, Code: odata.CodeBadRequest, Message: "The key predicate in " + strconv.Quote(rest) + " has no closing parenthesis."}
		}
		if after := tail[end+1:]; after != "" {
			return resource{}, &odata.Error{Status: http.StatusNotImplemented, Code: odata.CodeNotImplemented,
				Message: "Paths into an entity (" + strconv.Quote(after) + ") are not supported; use $select."}
		}
		name, pred, byKey = name[:i], tail[1:end], true
	}
	set, ok := svc.Set(name)
	if !ok || count && byKey {
		return resource{}, &odata.Error{Status: http.StatusNotFound, Code: odata.CodeNotFound,
			Message: "This feed has no resource " + strconv.Quote(rest) + "; it offers " + setNames(svc) + "."}
	}
	return resource{set: set, count: count, key: pred, byKey: byKey}, nil
}

func setNames(svc odata.Service) string {
	var names []string
	for _, s := range svc.Sets {
		names = append(names, s.Name)
	}
	return joinAnd(names)
}

// joinAnd lists names as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// fieldMap says how each property folds into JQL.
func fieldMap(cols []Column, zone *time.Location, wide bool) odata.FieldMap {
	m := odata.FieldMap{Fields: map[string]odata.JQLField{}, Zone: zone, Widen: wide}
	for _, c := range cols {
		if c.JQL != "" {
			m.Fields[c.Name] = odata.JQLField{Clause: c.JQL, Kind: c.Fold, Empty: c.Empty}
		}
	}
	return m
}

// plan is one feed request worked out: which JQL Jira is asked, which rows
// Ferry keeps, and which columns it computes and writes.
type plan struct {
	set   odata.EntitySet
	q     odata.Query
	fold  odata.Fold
	wide  bool
	jql   string
	where string // jql's condition and order, apart
	order string
	zone  *time.Location
	src   *DataSource    // the data source read
	need  []Column       // computed: the written columns and those the filter reads
	out   []Column       // written, in $select order
	idx   map[string]int // column name → index in need
}

func (p *plan) get(vals []any) func(string) any {
	return func(name string) any {
		if i, ok := p.idx[name]; ok {
			return vals[i]
		}
		return nil
	}
}

// keep reports whether a row is one the options select: rows of a wider
// JQL search that do not match the $filter exactly are dropped here.
func (p *plan) keep(vals []any) bool {
	return p.fold.Exact || p.q.Filter.Match(p.get(vals))
}

func (f *Feeds) plan(ctx context.Context, fr *feedRequest, set odata.EntitySet, cols []Column, q odata.Query, wide bool) (*plan, error) {
	var zone *time.Location
	if q.Filter != nil {
		var err error
		if zone, err = f.userZone(ctx, fr); err != nil {
			return nil, asUnavailable(err)
		}
	}
	fm := fieldMap(cols, zone, wide)
	fold, err := q.Filter.Fold(fm)
	if err != nil {
		return nil, err
	}
	order, err := odata.JQLOrderBy(q.OrderBy, set, fm)
	if err != nil {
		return nil, err
	}
	p := &plan{set: set, q: q, fold: fold, wide: wide, jql: combineJQL(fr.source.JQL, fold.JQL, order), zone: zone, src: &fr.source}
	p.where, p.order = splitOrderBy(p.jql)
	if p.zone == nil {
		// Sliced reads write date-times in the user's zone too.
		if p.zone, err = f.userZone(ctx, fr); err != nil {
			return nil, asUnavailable(err)
		}
	}
	p.columns(cols, selectedColumns(q.Columns(set), cols))
	return p, nil
}

// columns sets what is written (out) and what must be computed for it and
// for the filter; counting writes nothing and needs only the filter's.
func (p *plan) columns(cols, out []Column) {
	p.out, p.need, p.idx = out, nil, map[string]int{}
	want := map[string]bool{}
	for _, c := range out {
		want[c.Name] = true
	}
	if !p.fold.Exact {
		for _, name := range filterProperties(p.q.Filter) {
			want[name] = true
		}
	}
	for _, c := range cols {
		if want[c.Name] || p.set.Name != TableIssues {
			p.idx[c.Name] = len(p.need)
			p.need = append(p.need, c)
		}
	}
}

func filterProperties(e *odata.Expr) []string {
	if e == nil {
		return nil
	}
	if e.Property != "" {
		return []string{e.Property}
	}
	return append(filterProperties(e.Left), filterProperties(e.Right)...)
}

// changesSince reports a filter that selects the issues updated since a
// moment: Updated ge (or gt) a value, alone or and-ed with other
// conditions, as Power BI's incremental refresh asks (Updated ge RangeStart
// and Updated lt RangeEnd).
func changesSince(e *odata.Expr) bool {
	switch {
	case e == nil:
		return false
	case e.Op == odata.OpAnd:
		return changesSince(e.Left) || changesSince(e.Right)
	case e.Op == odata.OpGe || e.Op == odata.OpGt:
		return e.Property == "Updated" && !e.Value.IsNull()
	}
	return false
}

// errStop ends a stream early: the page is full or $top is reached.
var errStop = errors.New("page complete")

// rows streams the rows of the plan's set from cur with their positions:
// at resumes at the row, next right after it. For Issues, rowCap ≥ 0 ends
// the read at a clean boundary after at most rowCap rows (Fetcher.Rows);
// for a table read per issue it caps the issues read. planned, if set, runs
// once the walk's count is known (-1: not counted).
func (f *Feeds) rows(ctx context.Context, fetch *Fetcher, p *plan, from Cursor, rowCap int, planned func(total int, from Cursor) error,
	emit func(vals []any, at, next Cursor) error) (Cursor, error) {
	t := tableNamed(p.set.Name, false)
	if t == nil {
		w := Walk{Where: p.where, Order: p.order, Fields: fieldIDs(p.need), Cols: p.need, Zone: p.zone,
			Changes: changesSince(p.q.Filter)}
		return fetch.Rows(ctx, w, from, rowCap, planned, emit)
	}
	if t.Site != nil {
		if planned != nil {
			// A site table is a few pages of Jira's lists whatever the
			// page size: nothing worth claiming from the points quota.
			if err := planned(0, from); err != nil {
				return from, err
			}
		}
		return siteRows(ctx, fetch, t, from, emit)
	}
	if planned != nil {
		if err := planned(countOf(from), from); err != nil {
			return from, err
		}
	}
	skip := from.Row
	start := Cursor{PageToken: from.PageToken, Offset: from.Offset, Done: from.Done}
	end, err := streamBatches(ctx, fetch, p.jql, start, rowCap, func(ctx context.Context, ids []string) ([][][]any, []int, error) {
		rows, err := t.PerIssue(ctx, fetch.Client, p.src, ids)
		at := make([]int, len(ids))
		for k := range at {
			at[k] = k
		}
		return rows, at, err
	}, func(rows [][]any, pos Pos) error {
		first := 0
		if skip > 0 && pos.Before == start {
			first = min(skip, len(rows))
		}
		skip = 0
		for j := first; j < len(rows); j++ {
			at, next := pos.Before, pos.After
			at.Row = j
			if j+1 < len(rows) {
				next = pos.Before
				next.Row = j + 1
			}
			at.Count, next.Count = from.Count, from.Count
			if err := emit(rows[j], at, next); err != nil {
				return err
			}
		}
		return nil
	})
	end.Count = from.Count
	return end, err
}

// siteRows streams a site table from its row from.Row: a later page reads
// the table again from its start and skips what was served (site tables
// are small: projects, versions, users, sprints).
func siteRows(ctx context.Context, fetch *Fetcher, t *Table, from Cursor, emit func(vals []any, at, next Cursor) error) (Cursor, error) {
	if from.Done {
		return from, fetch.started()
	}
	n := 0
	err := t.Site(ctx, fetch.Client, func(vals []any) error {
		i := n
		n++
		if i < from.Row {
			return nil
		}
		if err := fetch.started(); err != nil {
			return err
		}
		return emit(vals, Cursor{Row: i, Count: from.Count}, Cursor{Row: i + 1, Count: from.Count})
	})
	if err != nil {
		return Cursor{Row: n, Count: from.Count}, err
	}
	return Cursor{Done: true, Count: from.Count}, fetch.started()
}

// isRefusal is Jira refusing a query (HTTP 400): an unknown value in it, or
// a source JQL that no longer holds.
func isRefusal(err error) bool { return jira.IsStatus(err, http.StatusBadRequest) }

// serveSet answers an entity set's page, its count, or one entity by key.
func (f *Feeds) serveSet(w http.ResponseWriter, r *http.Request, fr *feedRequest, res resource, cols []Column) error {
	ctx := r.Context()
	set := res.set
	q, err := odata.ParseQuery(r.URL.RawQuery, set, 0)
	if err != nil {
		return err
	}
	if res.byKey {
		return f.serveEntity(w, r, fr, res, cols, q)
	}
	var media odata.Media
	if !res.count {
		if media, err = odata.Negotiate(q, r.Header.Get("Accept")); err != nil {
			return err
		}
	}
	key, err := f.skiptokenKey(ctx, fr)
	if err != nil {
		return err
	}
	var oc odata.Cursor
	var cur Cursor
	if q.SkipToken != "" {
		if oc, err = odata.DecodeCursor(key, q); err != nil {
			return err
		}
		if cur, err = parseCursor(oc.Resume); err != nil {
			return &odata.Error{Status: http.StatusBadRequest, Code: odata.CodeInvalidSkipToken, Target: "$skiptoken", Message: "invalid $skiptoken: request the first page again"}
		}
	}
	fetch := f.fetcher(fr.user)
	if res.count {
		n, err := f.countWithRetry(ctx, fr, fetch, set, cols, q)
		if err != nil {
			return err
		}
		w.Header().Set("OData-Version", odata.Version)
		w.Header().Set("Content-Type", "text/plain;charset=utf-8")
		w.Write([]byte(strconv.Itoa(n)))
		return nil
	}

	limit := f.pageSize()
	if n := preferredPageSize(r.Header.Values("Prefer")); n > 0 && n < limit {
		limit = n
		w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(n))
	}
	for attempt := 0; ; attempt++ {
		p, err := f.plan(ctx, fr, set, cols, q, cur.Wide)
		if err != nil {
			return err
		}
		committed, err := f.writePage(w, r, fr, fetch, p, media, key, oc, cur, limit)
		if err != nil && !committed && isRefusal(err) && p.fold.Refusable && !cur.Wide && q.SkipToken == "" && attempt == 0 {
			// Jira refused a value it does not know (a status or issue that
			// does not exist, a project the user cannot see): OData's answer
			// is "no match" for it, so ask again without naming values and
			// decide on the stream.
			cur.Wide = true
			fetch = f.fetcher(fr.user)
			continue
		}
		if err != nil && !committed {
			return err
		}
		return nil
	}
}

// writePage streams one page. It returns committed once response headers
// are out; a failure after that aborts the connection so that the client
// sees a broken payload rather than a silently short page.
//
// A walk is planned once, on its first page: the plan (or, for a walk read
// by id, the position in Jira's id pages), $count and what was served travel
// in the $skiptoken, so every later page resumes where the last one stopped
// and nothing is counted or listed twice.
func (f *Feeds) writePage(w http.ResponseWriter, r *http.Request, fr *feedRequest, fetch *Fetcher, p *plan, media odata.Media, key []byte, oc odata.Cursor, cur Cursor, limit int) (bool, error) {
	ctx, res := claim(r.Context(), fr)
	defer res.Done()
	q := p.q
	exact := p.fold.Exact && p.set.Name == TableIssues
	if q.Count && cur.Count == nil && (!exact || p.fold.Never) {
		// Counting rows Jira cannot count reads them all, once per walk.
		n, err := f.count(ctx, fetch, p)
		if err != nil {
			return false, err
		}
		cur.Count = &n
	}
	total := 0
	bw := bufio.NewWriterSize(w, 32<<10)
	rw := odata.NewRowWriter(bw, odata.ContextURL(f.serviceRoot(r), p.set, q), q.Columns(p.set))
	rw.SetMedia(media, p.set, Namespace)
	committed := false
	fetch.OnFirst = func() error {
		committed = true
		odata.SetHeaders(w.Header(), media.ContentType())
		if q.Count {
			return rw.WriteCount(int64(total))
		}
		return nil
	}
	// Rows still to serve: $top counts across pages, after the filter.
	topLeft := -1
	if q.Top != nil {
		topLeft = max(*q.Top-oc.Served, 0)
		limit = min(limit, topLeft)
	}
	skip := 0
	if q.SkipToken == "" {
		skip = q.Skip
	}
	next := Cursor{Done: true}
	var err error
	// planned runs once the walk's count is known, before any row: $count,
	// and the claim on Jira's points quota (an export that cannot finish
	// within it is refused here, before anything is read).
	planned := func(n int, from Cursor) error {
		if cur.Count == nil && from.Count != nil {
			cur.Count = from.Count
		}
		if q.Count && cur.Count == nil {
			c, err := fetch.Client.ApproximateCount(ctx, boundedJQL(p.where))
			if err != nil {
				return err
			}
			cur.Count = &c
		}
		if cur.Count != nil {
			total = *cur.Count
		}
		if n < 0 && cur.Count != nil {
			n = *cur.Count
		}
		left := -1
		if n >= 0 {
			left = max(n-oc.Served, 0)
		}
		return f.need(fr, res, from, p.set.Name, left, limit)
	}
	switch {
	case p.fold.Never || limit == 0 || cur.Done:
		if err = planned(countOf(cur), cur); err == nil {
			err = fetch.started()
		}
		next = Cursor{Done: true}
	default:
		rowCap := -1
		if exact && p.set.Name == TableIssues {
			if skip > 0 {
				// Whole pieces of a sliced walk are skipped by their counts.
				cur, skip = f.skipCounted(ctx, fetch, p, cur, skip)
			}
			rowCap = limit + skip
		}
		fetch.FirstBatch = limit + skip + 1 // a small page may be done within its first few issues
		out := make(odata.Row, len(p.out))
		written := 0
		var end Cursor
		end, err = f.rows(ctx, fetch, p, cur, rowCap, func(n int, from Cursor) error {
			return planned(n, from)
		}, func(vals []any, at, after Cursor) error {
			if !p.keep(vals) {
				return nil
			}
			if skip > 0 {
				skip--
				return nil
			}
			if written == limit {
				next = at // a row beyond this page exists: the next page starts at it
				return errStop
			}
			for _, c := range p.out {
				out[c.Name] = vals[p.idx[c.Name]]
			}
			if err := rw.WriteRow(out); err != nil {
				return err
			}
			written++
			if written == topLeft {
				next = Cursor{Done: true}
				return errStop
			}
			return nil
		})
		switch {
		case err == errStop:
			err = fetch.started()
		case err == nil:
			next = end
		}
	}
	if err != nil {
		if !committed {
			return false, err
		}
		f.abort(r, err)
	}
	link := ""
	if !next.Done {
		next.Wide = p.wide
		if next.Count == nil {
			next.Count = cur.Count
		}
		link = odata.NextLink(f.serviceRoot(r)+"/"+p.set.Name, q, odata.EncodeCursor(key, q, odata.Cursor{Resume: encodeCursor(next), Served: oc.Served + rw.Rows()}))
	}
	if err := rw.Close(link); err != nil {
		f.abort(r, err)
	}
	if err := bw.Flush(); err != nil {
		f.abort(r, err)
	}
	return true, nil
}

// skipCounted skips n rows of a fresh exact walk without reading them where
// Jira's counts allow: whole pieces of a sliced walk (planned here, so the
// plan is made once), or id pages of a walk read by id. It returns the
// position and the rows left to skip on the stream.
func (f *Feeds) skipCounted(ctx context.Context, fetch *Fetcher, p *plan, cur Cursor, n int) (Cursor, int) {
	if !cur.fresh() {
		return cur, n
	}
	if _, _, ok := sortKey(p.order); ok {
		pl, err := planWalk(ctx, fetch.Client, p.where, p.order, p.zone, fetch.LeafRows)
		if err != nil {
			return cur, n // the stream will read and say what is wrong
		}
		total := pl.Total
		c := Cursor{Mode: modeSlices, Plan: pl, Count: &total}
		if pl.Total == 0 {
			return Cursor{Done: true, Count: &total}, 0
		}
		return skipPieces(pl, pl.leaves(), c, n)
	}
	c, err := fetch.Skip(ctx, p.jql, cur, n)
	if err != nil {
		return cur, n
	}
	return c, 0
}

// serveEntity answers Set(key): the one row whose key is given, or 404.
func (f *Feeds) serveEntity(w http.ResponseWriter, r *http.Request, fr *feedRequest, res resource, cols []Column, q odata.Query) error {
	ctx := r.Context()
	if q.Filter != nil || q.Top != nil || q.Skip != 0 || len(q.OrderBy) > 0 || q.Count || q.SkipToken != "" {
		return &odata.Error{Status: http.StatusBadRequest, Code: odata.CodeBadRequest,
			Message: "A single entity takes only $select and $format."}
	}
	media, err := odata.Negotiate(q, r.Header.Get("Accept"))
	if err != nil {
		return err
	}
	filter, err := odata.KeyFilter(res.set, res.key)
	if err != nil {
		return err
	}
	if t := tableNamed(res.set.Name, false); t != nil && t.PerIssue != nil && res.set.Key[0] == "Id" {
		// A key that starts with the issue id (Changelog, IssueLinks,
		// StatusHistory): let JQL find the issue.
		if id, _, ok := strings.Cut(filter.Value.Str, "-"); ok {
			if _, perr := strconv.ParseInt(id, 10, 64); perr == nil {
				if filter, err = odata.ParseFilter(filter.String()+" and IssueId eq "+id, res.set); err != nil {
					return err
				}
			}
		}
	}
	q.Filter = filter
	notFound := &odata.Error{Status: http.StatusNotFound, Code: odata.CodeNotFound,
		Message: res.set.Name + "(" + res.key + ") does not exist, or you may not see it."}
	fetch := f.fetcher(fr.user)
	var found []any
	var p *plan
	for _, wide := range []bool{false, true} {
		if p, err = f.plan(ctx, fr, res.set, cols, q, wide); err != nil {
			return err
		}
		found = nil
		_, err = f.rows(ctx, fetch, p, Cursor{}, -1, nil, func(vals []any, _, _ Cursor) error {
			if p.keep(vals) {
				found = vals
				return errStop
			}
			return nil
		})
		if err == errStop || err == nil || !(isRefusal(err) && p.fold.Refusable) {
			break
		}
		fetch = f.fetcher(fr.user)
	}
	if err != nil && err != errStop {
		return err
	}
	if found == nil {
		return notFound
	}
	row := odata.Row{}
	for _, c := range p.out {
		row[c.Name] = found[p.idx[c.Name]]
	}
	odata.SetHeaders(w.Header(), media.ContentType())
	return odata.WriteEntity(w, odata.EntityContextURL(f.serviceRoot(r), res.set, q), q.Columns(res.set), row, media, res.set, Namespace)
}

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

// defaultPageSize is the most rows of an OData page unless the client asks
// for fewer (Prefer: odata.maxpagesize): a walk's plan ends pages at whole
// pieces, and a page long enough that the next request's first round trip
// is a small part of it keeps a paged walk as fast as the CSV stream.
const defaultPageSize = 50_000

func (f *Feeds) pageSize() int {
	if f.PageSize > 0 {
		return f.PageSize
	}
	return defaultPageSize
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

// count is the number of rows the plan selects: Jira's count when the JQL
// is exact for Issues (search/approximate-count: one point); otherwise every
// row is read and matched.
func (f *Feeds) count(ctx context.Context, fetch *Fetcher, p *plan) (int, error) {
	switch {
	case p.fold.Never:
		return 0, nil
	case p.fold.Exact && p.set.Name == TableIssues:
		return fetch.Client.ApproximateCount(ctx, boundedJQL(p.where))
	}
	counter := &Fetcher{Client: fetch.Client, Workers: fetch.Workers}
	n := 0
	_, err := f.rows(ctx, counter, p, Cursor{}, -1, nil, func(vals []any, _, _ Cursor) error {
		if p.keep(vals) {
			n++
		}
		return nil
	})
	return n, err
}

func (f *Feeds) countWithRetry(ctx context.Context, fr *feedRequest, fetch *Fetcher, set odata.EntitySet, cols []Column, q odata.Query) (int, error) {
	ctx = jira.WithSpend(ctx, fr.source.ID, nil)
	for _, wide := range []bool{false, true} {
		p, err := f.plan(ctx, fr, set, cols, q, wide)
		if err != nil {
			return 0, err
		}
		p.columns(cols, nil)
		n, err := f.count(ctx, fetch, p)
		if err != nil && isRefusal(err) && p.fold.Refusable && !wide {
			continue // as in serveSet: Jira refused a value it does not know
		}
		return n, err
	}
	panic("unreachable")
}

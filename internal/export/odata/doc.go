// Package odata is the OData v4 protocol layer of Ferry's feeds: the data
// model ($metadata, service document), the query options of a request, the
// $filter language and its translation to JQL, the JSON rows of a response,
// the paging tokens, and the error payload. It keeps Ferry's first promise
// (P1) by construction: it holds at most one row at a time and has no
// storage, no Jira client and no HTTP client — the export handlers call it.
//
// # A page, end to end
//
//	q, err := odata.ParseQuery(r.URL.RawQuery, set, 0)
//	if err != nil { odata.WriteError(w, err); return }
//	cur := odata.Cursor{}
//	if q.SkipToken != "" {
//		if cur, err = odata.DecodeCursor(key, q); err != nil { odata.WriteError(w, err); return }
//	}
//	where, err := q.Filter.JQL(fields)            // "" without $filter
//	if err != nil { odata.WriteError(w, err); return }
//	order, err := odata.JQLOrderBy(q.OrderBy, set, fields)
//	...  // rows to fetch: min(pageSize, *q.Top-cur.Served); skip q.Skip rows on the first page only
//	odata.SetHeaders(w.Header(), odata.ContentTypeJSON)
//	rw := odata.NewRowWriter(w, odata.ContextURL(root, set, q), q.Columns(set))
//	if q.Count { rw.WriteCount(total) }
//	for each issue { rw.WriteRow(row) }            // on a fetch error: panic(http.ErrAbortHandler)
//	next := ""
//	if more && (q.Top == nil || cur.Served+rw.Rows() < *q.Top) {
//		next = odata.NextLink(root+"/"+set.Name, q,
//			odata.EncodeCursor(key, q, odata.Cursor{Resume: jiraNext, Served: cur.Served + rw.Rows()}))
//	}
//	rw.Close(next)
//
// Example_page in example_test.go runs this flow.
//
// # Supported
//
//   - $metadata: CSDL XML 4.0 (Edm.String, Int64, Decimal with
//     Scale="variable", Boolean, Date, DateTimeOffset with Precision="3",
//     collections of these; keys; Core.Description), checked by the OASIS
//     odata-csdl converter in the tests. Service document in JSON.
//   - $select: * or a comma list (spaces allowed); key properties are always
//     returned, as the spec permits.
//   - $top, $skip: non-negative integers. $top counts rows across all pages.
//   - $orderby: properties marked Sortable, each asc or desc.
//   - $count=true|false: @odata.count before the rows.
//   - $filter: eq ne gt ge lt le on a property and a literal (either side);
//     in (4.01); and, or, not, parentheses; a bare Boolean property;
//     contains, startswith, endswith on String properties (parsed and
//     type-checked; JQL cannot express them, so feeds answer 501).
//     Literals: 'string' (a doubled quote escapes one), integers, decimals, true,
//     false, null, dates 2024-01-31, date-times 2024-01-31T10:00:00Z (offset
//     or Z, seconds optional).
//   - $skiptoken: opaque, HMAC-SHA256 signed, bound to the query it pages.
//   - $format=json / application/json;odata.metadata=minimal.
//   - Option names as OData 4.01 has them: case-insensitive, "$" optional,
//     percent-encoded "$" (%24) accepted. Custom options are ignored.
//
// # Refused
//
// Malformed input is 400 (code BadRequest, UnknownProperty, TypeMismatch or
// InvalidSkipToken) naming the option or property at fault: unknown system
// options, an option given twice, $top=-1, $count=yes, an unknown property,
// a literal of the wrong type, $skip together with $skiptoken, a broken
// token. Other formats than JSON are 406. Valid OData that Ferry does not
// support is 501 NotImplemented: $expand, $search, $apply, $compute,
// $levels, $index, $schemaversion, $deltatoken, $id; $select paths;
// $orderby on an unsortable property or an expression; arithmetic (add, sub,
// mul, div, divby, mod), has, lambdas (any, all), other canonical functions,
// typed literals (duration'…', guid'…'), parameter aliases, floating-point
// literals with exponents, comparing two properties; and any filter JQL
// cannot express exactly (see Expr.JQL).
//
// Ferry answers OData-Version 4.0: its $metadata is CSDL 4.0 and its JSON is
// 4.0 JSON, which Power BI and Excel read. The 4.01 request conveniences it
// accepts (option names, in) are a superset no 4.0 client is hurt by.
package odata

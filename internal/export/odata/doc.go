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
//	media, err := odata.Negotiate(q, r.Header.Get("Accept")) // 406 when no JSON is acceptable
//	fold, err := q.Filter.Fold(fields)   // the widest JQL holding every match; fold.Exact says whether it holds only those
//	order, err := odata.JQLOrderBy(q.OrderBy, set, fields)  // "created DESC": the terms of ORDER BY
//	...  // ask Jira for source AND fold.JQL ORDER BY order, resuming at the cursor of q.SkipToken (DecodeCursor)
//	rw := odata.NewRowWriter(w, odata.ContextURL(root, set, q), q.Columns(set))
//	rw.SetMedia(media, set, namespace)
//	for each row { if fold.Exact || q.Filter.Match(get) { rw.WriteRow(row) } }  // $skip/$top count these rows
//	rw.Close(odata.NextLink(root+"/"+set.Name, q, odata.EncodeCursor(key, q, cursor)))
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
//     contains, startswith, endswith on String properties (applied on the
//     stream: JQL has only word search).
//     Literals: 'string' (a doubled quote escapes one), integers, decimals, true,
//     false, null, dates 2024-01-31, date-times 2024-01-31T10:00:00Z (offset
//     or Z, seconds optional).
//   - $skiptoken: opaque, HMAC-SHA256 signed, bound to the query it pages.
//   - JSON with odata.metadata=minimal, none or full and
//     IEEE754Compatible=true|false, by $format or Accept (Negotiate);
//     $metadata as XML (NegotiateMetadata).
//   - Keys: KeyFilter turns Issues('PROJ-1') into Key eq 'PROJ-1'.
//   - Option names as OData 4.01 has them: case-insensitive, "$" optional,
//     percent-encoded "$" (%24) accepted. Custom options are ignored.
//
// # Refused
//
// Malformed input is 400 (code BadRequest, UnknownProperty, TypeMismatch or
// InvalidSkipToken) naming the option or property at fault: unknown system
// options, an option given twice, $top=-1, $count=yes, an unknown property,
// a literal of the wrong type, $skip together with $skiptoken, a broken
// token. Formats not served are 406. Option names and values are decoded
// as form-encoded query strings: "+" is a space. Valid OData that Ferry does not
// support is 501 NotImplemented: $expand, $search, $apply, $compute,
// $levels, $index, $schemaversion, $deltatoken, $id; $select paths;
// $orderby on an unsortable property or an expression; arithmetic (add, sub,
// mul, div, divby, mod), has, lambdas (any, all), other canonical functions,
// typed literals (duration'…', guid'…'), parameter aliases, floating-point
// literals with exponents, comparing two properties. Everything else a
// $filter says is answered exactly: folded into JQL where JQL can say it
// (Expr.Fold), decided row by row on the stream where it cannot
// (Expr.Match).
//
// Ferry answers OData-Version 4.0: its $metadata is CSDL 4.0 and its JSON is
// 4.0 JSON, which Power BI and Excel read. The 4.01 request conveniences it
// accepts (option names, in) are a superset no 4.0 client is hurt by.
package odata

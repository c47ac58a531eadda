package odata_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"ferry/internal/export/odata"
)

// One page of /odata/{source}/Issues, as the export handler serves it. The
// fetch pipeline is faked by a slice; pageSize is 2.
func Example_page() {
	set := odata.EntitySet{Name: "Issues", EntityType: "Issue", Key: []string{"Key"}, Properties: []odata.Property{
		{Name: "Key", Type: odata.EdmString},
		{Name: "Status", Type: odata.EdmString, Nullable: true},
		{Name: "Created", Type: odata.EdmDateTimeOffset, Sortable: true},
	}}
	fields := odata.FieldMap{Zone: time.UTC, Fields: map[string]odata.JQLField{
		"Key": {Clause: "key", Kind: odata.FoldKey}, "Status": {Clause: "status", Kind: odata.FoldName, Empty: true},
		"Created": {Clause: "created", Kind: odata.FoldDateTime},
	}}
	key := []byte("per-source-hmac-key-0123456789ab")
	root := "https://ferry.example/odata/src1"
	r := httptest.NewRequest("GET", "/odata/src1/Issues?$filter=Status%20ne%20'Done'&$orderby=Created%20desc&$top=3&$count=true", nil)
	w := httptest.NewRecorder()

	q, err := odata.ParseQuery(r.URL.RawQuery, set, 0)
	if err != nil {
		odata.WriteError(w, err)
		return
	}
	cur := odata.Cursor{}
	if q.SkipToken != "" {
		if cur, err = odata.DecodeCursor(key, q); err != nil {
			odata.WriteError(w, err)
			return
		}
	}
	fold, err := q.Filter.Fold(fields)
	if err != nil {
		odata.WriteError(w, err)
		return
	}
	order, _ := odata.JQLOrderBy(q.OrderBy, set, fields)
	fmt.Printf("JQL: %q ORDER BY %s (exact: %v)\n", fold.JQL, order, fold.Exact)

	fetched := []odata.Row{ // what Jira returned for the JQL, first page
		{"Key": "A-3", "Status": "Open", "Created": time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"Key": "A-2", "Status": nil, "Created": time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)},
	}
	odata.SetHeaders(w.Header(), odata.ContentTypeJSON)
	rw := odata.NewRowWriter(w, odata.ContextURL(root, set, q), q.Columns(set))
	rw.WriteCount(7)
	for _, row := range fetched {
		if fold.Exact || q.Filter.Match(func(p string) any { return row[p] }) {
			rw.WriteRow(row)
		}
	}
	next := ""
	if served := cur.Served + rw.Rows(); q.Top == nil || served < *q.Top {
		tok := odata.EncodeCursor(key, q, odata.Cursor{Resume: "jira-next-page-token", Served: served})
		next = odata.NextLink(root+"/"+set.Name, q, tok)
	}
	rw.Close(next)

	body := w.Body.String()
	fmt.Println(body[:strings.Index(body, `,"@odata.nextLink"`)])
	fmt.Println(strings.Contains(next, "$filter=Status%20ne%20'Done'&$orderby=Created%20desc&$count=true&$top=3&$skiptoken="))
	// Output:
	// JQL: "" ORDER BY created DESC (exact: false)
	// {"@odata.context":"https://ferry.example/odata/src1/$metadata#Issues","@odata.count":7,"value":[{"Key":"A-3","Status":"Open","Created":"2024-03-01T00:00:00Z"},{"Key":"A-2","Status":null,"Created":"2024-02-01T00:00:00Z"}]
	// true
}

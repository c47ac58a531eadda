package export

import (
	"bufio"
	"context"
	"fmt"
	"io"
)

// TableCSV streams a per-issue table of the issues jql selects to out as
// the table's CSV feed writes it — the CSV handler's plan, rows and writer,
// without HTTP — for the benchmarks of package export_test.
func TableCSV(ctx context.Context, f *Fetcher, table, jql string, src DataSource, out io.Writer) (int, error) {
	t := tableNamed(table, false)
	if t == nil || t.PerIssue == nil {
		return 0, fmt.Errorf("no per-issue table %q", table)
	}
	bw := bufio.NewWriterSize(out, 32<<10)
	cw, err := newCSVWriter(bw, t.Columns, false)
	if err != nil {
		return 0, err
	}
	src.JQL = jql
	p := &plan{set: t.entitySet(), jql: jql, src: &src}
	rows := 0
	_, err = (&Feeds{}).rows(ctx, f, p, Cursor{}, -1, nil, func(vals []any, _, _ Cursor) error {
		rows++
		return cw.writeValues(vals)
	})
	if err == nil {
		err = bw.Flush()
	}
	return rows, err
}

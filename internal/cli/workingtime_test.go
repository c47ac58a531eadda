package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
)

// isWorkingInstant is the README's rule, read from its words: an instant
// is working time when, on the wall clock of the calendar's zone, its date
// is a working day and not a holiday and its time of day is at or after
// the start and before the end.
func isWorkingInstant(w export.WorkingTime, loc *time.Location, t time.Time) bool {
	lt := t.In(loc)
	if !slices.Contains(w.Days, strings.ToLower(lt.Weekday().String()[:3])) || slices.Contains(w.Holidays, lt.Format(time.DateOnly)) {
		return false
	}
	hm := lt.Format("15:04")
	return w.Start <= hm && hm < w.End
}

// countWorkingSeconds counts [a, b) minute by minute (the zones' changes
// and the hours fall on whole minutes), the partial first and last minutes
// exactly, in whole seconds.
func countWorkingSeconds(w export.WorkingTime, a, b time.Time) int64 {
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		panic(err)
	}
	var total time.Duration
	for t := a; t.Before(b); {
		next := t.Truncate(time.Minute).Add(time.Minute)
		if next.After(b) {
			next = b
		}
		if isWorkingInstant(w, loc, t) {
			total += next.Sub(t)
		}
		t = next
	}
	return int64(total / time.Second)
}

func num(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// TestStatusHistoryWorkingSecondsEndToEnd: a data source's working
// calendar, set through the app's API, reaches StatusHistory through OData
// and CSV against the simulator. Without a calendar WorkingSeconds is null;
// a bad calendar is refused naming the field and changes nothing; with one,
// each closed interval's WorkingSeconds is the minute-by-minute count of
// the README's rule (Lord Howe's half-hour DST, holidays on dates the
// intervals cross), DurationSeconds stays calendar time, the open interval
// has neither, and a $filter on WorkingSeconds selects what the walk does.
func TestStatusHistoryWorkingSecondsEndToEnd(t *testing.T) {
	d, _, logs := startTestDemo(t, 120)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	admin := d.sim.Users()[0]
	page := pageFor(t, d, admin.AccountID)
	body := map[string]any{"name": "Time in status", "jql": demoJQL, "fields": []string{"summary", "status"},
		"tables": []string{"Issues", "StatusHistory"}, "visibility": "everyone"}
	var made struct {
		ID          string
		WorkingTime *export.WorkingTime
	}
	mustAPI(t, d, page, "POST", "/app-api/sources", body, &made)
	feed := d.info.AppURL + "/odata/" + made.ID + "/StatusHistory"
	before := decodedWalk(t, feed, d.info.Token)
	closed := 0
	for _, r := range before {
		if r["WorkingSeconds"] != nil {
			t.Fatalf("no calendar, yet WorkingSeconds %v in %v", r["WorkingSeconds"], r)
		}
		if r["Left"] != nil {
			closed++
		}
	}
	if made.WorkingTime != nil || closed < 50 {
		t.Fatalf("calendar %+v, %d closed intervals of %d: the test would prove little", made.WorkingTime, closed, len(before))
	}

	// Holidays on local dates some intervals cross.
	cal := export.WorkingTime{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "08:30", End: "17:00", TimeZone: "Australia/Lord_Howe"}
	lordHowe, _ := time.LoadLocation(cal.TimeZone)
	for i := 0; i < len(before) && len(cal.Holidays) < 8; i += 7 {
		if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(before[i]["Entered"])); err == nil {
			cal.Holidays = append(cal.Holidays, at.In(lordHowe).AddDate(0, 0, 1).Format(time.DateOnly))
		}
	}
	slices.Sort(cal.Holidays)
	cal.Holidays = slices.Compact(cal.Holidays)

	type listed struct {
		ID          string
		Updated     time.Time
		WorkingTime *export.WorkingTime
	}
	var was []listed
	mustAPI(t, d, page, "GET", "/app-api/sources", nil, &was)
	// Bad calendars: 400 naming the field, and nothing saved.
	for field, bad := range map[string]map[string]any{
		"workingTime.days":     {"days": []string{"mon", "someday"}, "start": "09:00", "end": "17:00", "timeZone": "UTC"},
		"workingTime.start":    {"days": []string{"mon"}, "start": "9am", "end": "17:00", "timeZone": "UTC"},
		"workingTime.end":      {"days": []string{"mon"}, "start": "17:00", "end": "09:00", "timeZone": "UTC"},
		"workingTime.timeZone": {"days": []string{"mon"}, "start": "09:00", "end": "17:00", "timeZone": "Mars/Olympus_Mons"},
		"workingTime.holidays": {"days": []string{"mon"}, "start": "09:00", "end": "17:00", "timeZone": "UTC", "holidays": []string{"2024-02-30"}},
	} {
		b := maps(body, "workingTime", bad)
		code, out := apiCall(t, d, page, "PUT", "/app-api/sources/"+made.ID, b)
		var e struct{ Field, Detail string }
		json.Unmarshal(out, &e)
		if code != 400 || e.Field != field {
			t.Errorf("%s: %d %s, want 400 naming %s", field, code, out, field)
		}
		if code, out := apiCall(t, d, page, "POST", "/app-api/sources", maps(b, "name", "Refused "+field)); code != 400 {
			t.Errorf("creating with a bad %s: %d %s", field, code, out)
		}
	}
	var list []listed
	mustAPI(t, d, page, "GET", "/app-api/sources", nil, &list)
	if len(was) != 2 || !slices.Equal(list, was) {
		t.Fatalf("after refused calendars the sources are %+v, were %+v", list, was)
	}

	mustAPI(t, d, page, "PUT", "/app-api/sources/"+made.ID, maps(body, "workingTime", cal), &made)
	if made.WorkingTime == nil || made.WorkingTime.TimeZone != cal.TimeZone || !slices.Equal(made.WorkingTime.Holidays, cal.Holidays) {
		t.Fatalf("saved calendar %+v, sent %+v", made.WorkingTime, cal)
	}
	after := decodedWalk(t, feed, d.info.Token)
	if len(after) != len(before) {
		t.Fatalf("%d rows with the calendar, %d without", len(after), len(before))
	}
	checked, someWork, lessThanAll, onHoliday := 0, 0, 0, 0
	for i, r := range after {
		dur, _ := num(r["DurationSeconds"])
		if r["Id"] != before[i]["Id"] || fmt.Sprint(r["DurationSeconds"]) != fmt.Sprint(before[i]["DurationSeconds"]) {
			t.Fatalf("row %d: %v with the calendar, %v without: DurationSeconds must stay calendar time", i, r, before[i])
		}
		if r["Left"] == nil {
			if r["WorkingSeconds"] != nil {
				t.Errorf("the open interval %v has WorkingSeconds", r["Id"])
			}
			continue
		}
		work, ok := num(r["WorkingSeconds"])
		if !ok || work < 0 || work > dur {
			t.Fatalf("%v: WorkingSeconds %v of %d s", r["Id"], r["WorkingSeconds"], dur)
		}
		if work > 0 {
			someWork++
		}
		if work < dur {
			lessThanAll++
		}
		a, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["Entered"]))
		b, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["Left"]))
		// The minute count of every interval up to 120 days long.
		if b.Sub(a) > 120*24*time.Hour {
			continue
		}
		if want := countWorkingSeconds(cal, a, b); work != want {
			t.Errorf("%v (%s to %s in %s): WorkingSeconds %d, counted %d", r["Id"], a.In(lordHowe), b.In(lordHowe), cal.TimeZone, work, want)
		}
		checked++
		for _, h := range cal.Holidays {
			if day, _ := time.ParseInLocation(time.DateOnly, h, lordHowe); a.Before(day) && b.After(day.AddDate(0, 0, 1)) && day.Weekday() != time.Saturday && day.Weekday() != time.Sunday {
				onHoliday++
				break
			}
		}
	}
	if checked < closed/2 || someWork < closed/3 || lessThanAll < closed/3 || onHoliday == 0 {
		t.Fatalf("%d of %d closed intervals counted, %d with working time, %d with less than all, %d across a weekday holiday: the test would prove little",
			checked, closed, someWork, lessThanAll, onHoliday)
	}

	// The CSV of the same feed is the walk, value for value.
	sets := readMetadata(t, d.info.AppURL+"/odata/"+made.ID+"/", d.info.Token)
	csvAgainstWalk(t, d.info.AppURL+"/export/"+made.ID+"/statushistory.csv", []string{d.info.Token}, [][]map[string]any{after}, sets["StatusHistory"])

	// $filter on the column: the walk's rows, in the walk's order.
	mid, _ := num(after[len(after)/3]["WorkingSeconds"])
	for _, f := range []struct {
		q    string
		keep func(map[string]any) bool
	}{
		{fmt.Sprintf("WorkingSeconds gt %d", mid), func(r map[string]any) bool { n, ok := num(r["WorkingSeconds"]); return ok && n > mid }},
		{"WorkingSeconds eq null", func(r map[string]any) bool { return r["WorkingSeconds"] == nil }},
		{fmt.Sprintf("WorkingSeconds le %d and DurationSeconds gt %d", mid, mid), func(r map[string]any) bool {
			w, ok1 := num(r["WorkingSeconds"])
			dd, ok2 := num(r["DurationSeconds"])
			return ok1 && ok2 && w <= mid && dd > mid
		}},
	} {
		got := decodedWalk(t, feed+"?$filter="+url.QueryEscape(f.q), d.info.Token)
		want := where(after, f.keep)
		if len(want) == 0 || len(want) == len(after) {
			t.Fatalf("%s selects %d of %d rows: the check would prove little", f.q, len(want), len(after))
		}
		if g, w := keysOf(got, "Id"), keysOf(want, "Id"); !slices.Equal(g, w) {
			t.Errorf("$filter=%s: %d rows, the walk has %d", f.q, len(g), len(w))
		}
	}

	// Removing the calendar brings back today's behaviour.
	mustAPI(t, d, page, "PUT", "/app-api/sources/"+made.ID, body, &made)
	for _, r := range decodedWalk(t, feed, d.info.Token) {
		if r["WorkingSeconds"] != nil {
			t.Fatalf("calendar removed, yet %v", r)
		}
	}
}

// maps is m with k set to v (m unchanged).
func maps(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for k2, v2 := range m {
		out[k2] = v2
	}
	out[k] = v
	return out
}

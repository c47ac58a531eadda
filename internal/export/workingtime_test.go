package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/jira"
)

// The working-time truth, written from the README's words rather than from
// workingtime.go: an instant is working time when, on the wall clock of
// the calendar's zone, its date is a working day and not a holiday and its
// time of day ("15:04") is at or after the start and before the end. It
// reads each instant's clock with time.In (the zone database's answer for
// that instant), where the code cuts the interval at zone changes.
func workingInstant(w WorkingTime, loc *time.Location, t time.Time) bool {
	lt := t.In(loc)
	day := strings.ToLower(lt.Weekday().String()[:3])
	if !slices.Contains(w.Days, day) || slices.Contains(w.Holidays, lt.Format(time.DateOnly)) {
		return false
	}
	hm := lt.Format("15:04")
	return w.Start <= hm && hm < w.End // "24:00" sorts after every clock
}

// bruteWorking counts [a, b) step by step: every zone change and every
// working-hours boundary of these zones falls on a whole minute (or second),
// so a step's state is its first instant's; the partial first and last
// steps are counted exactly.
func bruteWorking(w WorkingTime, loc *time.Location, a, b time.Time, step time.Duration) time.Duration {
	var total time.Duration
	for t := a; t.Before(b); {
		next := t.Truncate(step).Add(step)
		if next.After(b) {
			next = b
		}
		if workingInstant(w, loc, t) {
			total += next.Sub(t)
		}
		t = next
	}
	return total
}

// DST changes of the test's zones: the intervals crowd around them.
var dstChanges = []struct {
	zone string
	at   string // local date
}{
	{"Europe/Berlin", "2024-03-31"}, {"Europe/Berlin", "2024-10-27"}, {"Europe/Berlin", "2025-03-30"},
	{"America/New_York", "2024-03-10"}, {"America/New_York", "2024-11-03"}, {"America/New_York", "2025-11-02"},
	{"Australia/Lord_Howe", "2024-04-07"}, {"Australia/Lord_Howe", "2024-10-06"}, {"Australia/Lord_Howe", "2025-04-06"},
	{"America/St_Johns", "2024-03-10"}, {"Pacific/Chatham", "2024-04-07"},
}

var testZones = []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"}

func genCalendar(rnd *rand.Rand, zone string, near time.Time) WorkingTime {
	w := WorkingTime{TimeZone: zone}
	switch rnd.IntN(4) {
	case 0:
		w.Days = []string{"mon", "tue", "wed", "thu", "fri"}
	case 1:
		w.Days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	default:
		for _, d := range dayNames {
			if rnd.IntN(2) == 0 {
				w.Days = append(w.Days, d)
			}
		}
		if len(w.Days) == 0 {
			w.Days = []string{dayNames[rnd.IntN(7)]}
		}
	}
	clock := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	switch rnd.IntN(5) {
	case 0:
		w.Start, w.End = "09:00", "17:00"
	case 1:
		w.Start, w.End = "00:00", "24:00" // every hour of the day: DST days are 23 or 25 hours long
	case 2:
		// Hours around the changes (01:00 to 04:00 in most zones, 01:30 to
		// 02:30 on Lord Howe).
		s := 30 + rnd.IntN(150)
		w.Start, w.End = clock(s), clock(s+1+rnd.IntN(240))
	default:
		s := rnd.IntN(24 * 60)
		w.Start, w.End = clock(s), clock(s+1+rnd.IntN(24*60-s))
	}
	for range rnd.IntN(6) {
		w.Holidays = append(w.Holidays, near.AddDate(0, 0, rnd.IntN(30)-10).Format(time.DateOnly))
	}
	if err := w.Validate(); err != nil {
		panic(err)
	}
	return w
}

// genInterval picks a zone and an interval in it: two times in three
// starting up to 60 hours before one of the zone's DST changes.
func genInterval(rnd *rand.Rand) (*time.Location, time.Time, time.Time) {
	var a time.Time
	var loc *time.Location
	if rnd.IntN(3) > 0 {
		c := dstChanges[rnd.IntN(len(dstChanges))]
		loc, _ = time.LoadLocation(c.zone)
		d, _ := time.ParseInLocation(time.DateOnly, c.at, loc)
		a = d.Add(time.Duration(rnd.IntN(96)-60) * time.Hour)
	} else {
		loc, _ = time.LoadLocation(testZones[rnd.IntN(len(testZones))])
		a = time.Date(2023, 1, 1, 0, 0, 0, 0, loc).Add(time.Duration(rnd.IntN(3*365*24)) * time.Hour)
	}
	a = a.Add(time.Duration(rnd.IntN(3600)) * time.Second)
	if rnd.IntN(2) == 0 {
		a = a.Add(time.Duration(rnd.IntN(1000)) * time.Millisecond)
	}
	var span time.Duration
	switch rnd.IntN(8) {
	case 0:
		span = 0
	case 1:
		span = time.Duration(rnd.IntN(1000)) * time.Millisecond // sub-second
	case 2:
		span = time.Duration(rnd.IntN(60)) * time.Second // sub-minute
	case 3:
		span = time.Duration(rnd.IntN(600)) * time.Minute
	case 4, 5:
		span = time.Duration(rnd.IntN(96)) * time.Hour // across a change, a weekend
	default:
		span = time.Duration(rnd.IntN(40*24*60)) * time.Minute // weeks: weekends, holidays
	}
	span += time.Duration(rnd.IntN(60000)) * time.Millisecond
	return loc, a, a.Add(span)
}

// TestWorkingTimeEqualsAMinuteByMinuteCount: over generated calendars in
// zones with DST changes (Berlin, New York, Lord Howe's half hour, St
// John's, Chatham) and without (UTC, Kolkata, Kathmandu), and intervals
// across weekends, holidays and the changes, from zero and sub-second
// lengths to weeks, the working time is exactly the step-by-step count
// (to the nanosecond), and WorkingSeconds its whole seconds.
func TestWorkingTimeEqualsAMinuteByMinuteCount(t *testing.T) {
	rnd := rand.New(rand.NewPCG(16, 20))
	cases := 600
	if testing.Short() {
		cases = 150
	}
	acrossChange, nonzero := 0, 0
	for n := range cases {
		loc, a, b := genInterval(rnd)
		w := genCalendar(rnd, loc.String(), a)
		c := w.compile()
		if c == nil {
			t.Fatalf("case %d: %+v does not compile", n, w)
		}
		got := c.working(a, b)
		want := bruteWorking(w, loc, a, b, time.Minute)
		if b.Sub(a) <= 6*time.Hour {
			if bySecond := bruteWorking(w, loc, a, b, time.Second); bySecond != want {
				t.Fatalf("case %d: the truth disagrees with itself: by minute %v, by second %v", n, want, bySecond)
			}
		}
		if got != want {
			t.Fatalf("case %d: %+v, %s to %s (%s): working %v, counted %v",
				n, w, a.In(loc).Format(time.RFC3339Nano), b.In(loc).Format(time.RFC3339Nano), b.Sub(a), got, want)
		}
		if _, o1 := a.In(loc).Zone(); true {
			if _, o2 := b.In(loc).Zone(); o1 != o2 {
				acrossChange++
			}
		}
		if want > 0 {
			nonzero++
		}
	}
	// The generator must reach what the test is about.
	if acrossChange < cases/10 || nonzero < cases/3 {
		t.Fatalf("only %d intervals across a DST change and %d with working time, of %d", acrossChange, nonzero, cases)
	}
}

// A working day's hours are wall-clock hours: with every hour working, the
// day the clocks go forward is 23 hours long in Berlin and 23.5 on Lord
// Howe, the day they go back 25 and 24.5 — counted by the truth, which
// knows nothing of offsets, and by the code.
func TestWorkingDayFollowsTheWallClockAcrossDST(t *testing.T) {
	for _, c := range []struct {
		zone, date string
		want       time.Duration
	}{
		{"Europe/Berlin", "2024-03-31", 23 * time.Hour},
		{"Europe/Berlin", "2024-10-27", 25 * time.Hour},
		{"America/New_York", "2024-03-10", 23 * time.Hour},
		{"Australia/Lord_Howe", "2024-10-06", 23*time.Hour + 30*time.Minute},
		{"Australia/Lord_Howe", "2024-04-07", 24*time.Hour + 30*time.Minute},
		{"UTC", "2024-03-31", 24 * time.Hour},
	} {
		loc, _ := time.LoadLocation(c.zone)
		d, _ := time.ParseInLocation(time.DateOnly, c.date, loc)
		w := WorkingTime{Days: dayNames[:], Start: "00:00", End: "24:00", TimeZone: c.zone}
		if err := w.Validate(); err != nil {
			t.Fatal(err)
		}
		a, b := d.Add(-12*time.Hour), d.Add(36*time.Hour) // the day with half a day either side
		w.Holidays = []string{d.AddDate(0, 0, -1).Format(time.DateOnly), d.AddDate(0, 0, 1).Format(time.DateOnly)}
		if got := bruteWorking(w, loc, a, b, time.Minute); got != c.want {
			t.Errorf("%s %s: the truth counts %v, want %v", c.zone, c.date, got, c.want)
		}
		if got := w.compile().working(a, b); got != c.want {
			t.Errorf("%s %s: working %v, want %v", c.zone, c.date, got, c.want)
		}
	}
}

// StatusHistory's WorkingSeconds: null without a calendar and for the open
// interval; with one, each closed interval's working time in whole seconds
// (the truth's count), never more than DurationSeconds.
func TestStatusHistoryWorkingSeconds(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for n := range 100 {
		is, hist := genHistory(rnd)
		if rows := statusIntervals(is, hist, nil); rows[0][8] != nil {
			t.Fatalf("case %d: no calendar, WorkingSeconds %v", n, rows[0][8])
		}
		zone := testZones[rnd.IntN(len(testZones))]
		loc, _ := time.LoadLocation(zone)
		w := genCalendar(rnd, zone, time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC))
		rows := statusIntervals(is, hist, w.compile())
		for i, r := range rows {
			if i == len(rows)-1 {
				if r[8] != nil {
					t.Fatalf("case %d: the open interval has WorkingSeconds %v", n, r[8])
				}
				continue
			}
			want := int64(bruteWorking(w, loc, r[4].(time.Time), r[5].(time.Time), time.Minute) / time.Second)
			if r[8] != want || want > r[6].(int64) {
				t.Fatalf("case %d interval %d (%v to %v, %v s): WorkingSeconds %v, counted %d", n, i, r[4], r[5], r[6], r[8], want)
			}
		}
	}
}

// Bad calendars are refused with the field that is wrong; good ones are
// put in one written form.
func TestWorkingTimeValidation(t *testing.T) {
	good := func() WorkingTime {
		return WorkingTime{Days: []string{"fri", "Monday", "TUE", "mon"}, Start: "09:00", End: "17:30", TimeZone: "Europe/Berlin",
			Holidays: []string{"2026-12-25", " 2026-01-01", "2026-12-25"}}
	}
	w := good()
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Days, []string{"mon", "tue", "fri"}) || !slices.Equal(w.Holidays, []string{"2026-01-01", "2026-12-25"}) {
		t.Fatalf("normalized to %+v", w)
	}
	for _, c := range []struct {
		field string
		edit  func(*WorkingTime)
	}{
		{"workingTime.days", func(w *WorkingTime) { w.Days = nil }},
		{"workingTime.days", func(w *WorkingTime) { w.Days = []string{"mon", "funday"} }},
		{"workingTime.days", func(w *WorkingTime) { w.Days = []string{"mo"} }},
		{"workingTime.start", func(w *WorkingTime) { w.Start = "9:00" }},
		{"workingTime.start", func(w *WorkingTime) { w.Start = "24:00" }},
		{"workingTime.start", func(w *WorkingTime) { w.Start = "09:60" }},
		{"workingTime.start", func(w *WorkingTime) { w.Start = "" }},
		{"workingTime.end", func(w *WorkingTime) { w.End = "24:01" }},
		{"workingTime.end", func(w *WorkingTime) { w.End = "25:00" }},
		{"workingTime.end", func(w *WorkingTime) { w.End = "09:00" }},
		{"workingTime.end", func(w *WorkingTime) { w.Start, w.End = "17:00", "09:00" }},
		{"workingTime.end", func(w *WorkingTime) { w.End = "5pm" }},
		{"workingTime.timeZone", func(w *WorkingTime) { w.TimeZone = "" }},
		{"workingTime.timeZone", func(w *WorkingTime) { w.TimeZone = "Local" }},
		{"workingTime.timeZone", func(w *WorkingTime) { w.TimeZone = "Europe/Atlantis" }},
		{"workingTime.timeZone", func(w *WorkingTime) { w.TimeZone = "../../etc/passwd" }},
		{"workingTime.timeZone", func(w *WorkingTime) { w.TimeZone = "Europe/Berlin\n" }},
		{"workingTime.holidays", func(w *WorkingTime) { w.Holidays = []string{"2026-02-30"} }},
		{"workingTime.holidays", func(w *WorkingTime) { w.Holidays = []string{"2026-2-3"} }},
		{"workingTime.holidays", func(w *WorkingTime) { w.Holidays = []string{"25.12.2026"} }},
		{"workingTime.holidays", func(w *WorkingTime) {
			w.Holidays = nil
			for d := range maxHolidays + 1 {
				w.Holidays = append(w.Holidays, time.Date(2026, 1, 1+d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly))
			}
		}},
	} {
		w := good()
		c.edit(&w)
		err := w.Validate()
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.EINVALID || ae.Field != c.field || ae.Message == "" {
			t.Errorf("%+v: %v, want an invalid %s", w, err, c.field)
		}
	}
}

// FuzzWorkingTime: any JSON a client sends as a data source's workingTime
// is refused with a named field or accepted; an accepted calendar is in its
// written form (validating it again changes nothing), survives a JSON
// round trip, compiles, and counts at most the interval's length.
func FuzzWorkingTime(f *testing.F) {
	f.Add([]byte(`{"days":["mon","tue","wed","thu","fri"],"start":"09:00","end":"17:00","timeZone":"Europe/Berlin","holidays":["2026-12-25"]}`), int64(0), int64(3600e9))
	f.Add([]byte(`{"days":["Saturday","sun"],"start":"00:00","end":"24:00","timeZone":"Australia/Lord_Howe"}`), int64(1712400000e9), int64(2*86400e9))
	f.Add([]byte(`{"days":["mon"],"start":"17:00","end":"09:00","timeZone":"UTC"}`), int64(0), int64(1))
	f.Add([]byte(`{"days":[],"start":"","end":"","timeZone":"Local","holidays":["2026-02-30"]}`), int64(-5), int64(7))
	f.Add([]byte(`{"days":["mon"],"start":"09:00","end":"17:00","timeZone":"America/New_York","holidays":[" 2024-03-10","2024-03-10"]}`), int64(1710000000e9), int64(40*86400e9))
	f.Fuzz(func(t *testing.T, raw []byte, from, span int64) {
		var w WorkingTime
		if json.Unmarshal(raw, &w) != nil {
			return
		}
		if err := w.Validate(); err != nil {
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Code != apperr.EINVALID || !strings.HasPrefix(ae.Field, "workingTime.") {
				t.Fatalf("refused without a field: %v", err)
			}
			return
		}
		again := w
		again.Days, again.Holidays = slices.Clone(w.Days), slices.Clone(w.Holidays)
		if err := again.Validate(); err != nil {
			t.Fatalf("the written form %+v is refused: %v", w, err)
		}
		b1, _ := json.Marshal(w)
		b2, _ := json.Marshal(again)
		var back WorkingTime
		json.Unmarshal(b1, &back)
		b3, _ := json.Marshal(back)
		if string(b1) != string(b2) || string(b1) != string(b3) {
			t.Fatalf("not one written form: %s, %s, %s", b1, b2, b3)
		}
		c := w.compile()
		if c == nil {
			t.Fatalf("%s is accepted but does not compile", b1)
		}
		// An interval within a few thousand years, at most 400 days long.
		a := time.Unix(0, 0).Add(time.Duration(from % (1 << 62)))
		d := time.Duration(span % int64(400*day))
		if d < 0 {
			d = -d
		}
		if got := c.working(a, a.Add(d)); got < 0 || got > d {
			t.Fatalf("%s: %v of working time in %v", b1, got, d)
		}
	})
}

// genHistory is an issue created in March 2024 (around the spring DST
// changes) and up to eight status changes, hours to days apart.
func genHistory(rnd *rand.Rand) (*jira.Issue, jira.IssueChangelog) {
	names := []string{"To Do", "In Progress", "In Review", "Done"}
	created := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rnd.IntN(40*86400)) * time.Second)
	cur := rnd.IntN(len(names))
	var hist []jira.ChangeGroup
	at := created
	for i := range 1 + rnd.IntN(8) {
		at = at.Add(time.Duration(rnd.IntN(5*86400)) * time.Second).Add(time.Duration(rnd.IntN(1000)) * time.Millisecond)
		next := rnd.IntN(len(names))
		from, to := names[cur], names[next]
		hist = append(hist, jira.ChangeGroup{ID: fmt.Sprint(100 + i), Created: at.Format("2006-01-02T15:04:05.000-0700"),
			Items: []jira.ChangeItem{{Field: "status", FieldID: "status", FromString: &from, ToString: &to}}})
		cur = next
	}
	is := &jira.Issue{ID: "10001", Key: "A-1", Fields: map[string]json.RawMessage{
		"created": []byte(`"` + created.Format("2006-01-02T15:04:05.000-0700") + `"`),
		"status":  []byte(`{"name":"` + names[cur] + `"}`),
	}}
	return is, jira.IssueChangelog{IssueID: "10001", Histories: hist}
}

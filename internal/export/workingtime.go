package export

import (
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // a data source's time zone loads on a host without a zoneinfo database

	"ferry/internal/apperr"
)

// WorkingTime is a data source's working calendar: StatusHistory counts the
// seconds of each interval that fall on a working day, inside the working
// hours, in the calendar's time zone (WorkingSeconds). The hours are
// wall-clock hours in that zone: an instant is working time when its local
// date is a working day and not a holiday and its local time of day is in
// [Start, End). A day on which the clocks go forward inside the hours is
// that much shorter, one on which they go back that much longer.
type WorkingTime struct {
	Days     []string `json:"days"`               // "mon" … "sun", in week order
	Start    string   `json:"start"`              // "09:00"
	End      string   `json:"end"`                // "17:00"; "24:00" is the end of the day
	TimeZone string   `json:"timeZone"`           // IANA name, e.g. "Europe/Berlin"
	Holidays []string `json:"holidays,omitempty"` // non-working dates, "2026-12-25", sorted
}

// dayNames are the working days' names in time.Weekday order.
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// weekOrder is the order days are listed in: Monday first.
var weekOrder = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

// maxHolidays bounds the holiday list (a source is one app property of at
// most 32 KB; 500 dates are under 7 KB).
const maxHolidays = 500

// Validate checks a calendar and puts it in its one written form: days in
// week order, "mon" for "Monday" or "MON", holidays sorted once each. An
// error names the field (workingTime.days, .start, .end, .timeZone,
// .holidays).
func (w *WorkingTime) Validate() error {
	var days [7]bool
	for _, d := range w.Days {
		wd, ok := parseDay(d)
		if !ok {
			return apperr.Invalid("workingTime.days", "%q is not a day of the week: use mon, tue, wed, thu, fri, sat or sun.", clip(d))
		}
		days[wd] = true
	}
	w.Days = nil // a new slice: the caller's may be shared
	for _, wd := range weekOrder {
		if days[wd] {
			w.Days = append(w.Days, dayNames[wd])
		}
	}
	if len(w.Days) == 0 {
		return apperr.Invalid("workingTime.days", "Pick at least one working day.")
	}
	start, ok := parseClock(w.Start, false)
	if !ok {
		return apperr.Invalid("workingTime.start", "The working day's start %q is not a time of day: write HH:MM, from 00:00 to 23:59, for example 09:00.", clip(w.Start))
	}
	end, ok := parseClock(w.End, true)
	if !ok {
		return apperr.Invalid("workingTime.end", "The working day's end %q is not a time of day: write HH:MM, from 00:01 to 24:00, for example 17:00.", clip(w.End))
	}
	if end <= start {
		return apperr.Invalid("workingTime.end", "The working day must end after it starts (%s to %s).", w.Start, w.End)
	}
	if _, err := loadZone(w.TimeZone); err != nil {
		return apperr.Invalid("workingTime.timeZone", "%q is not a time zone: name one the way the IANA time zone database does, for example Europe/Berlin, America/New_York or UTC.", clip(w.TimeZone))
	}
	var hol []string
	for _, h := range w.Holidays {
		h = strings.TrimSpace(h)
		if _, ok := parseDate(h); !ok {
			return apperr.Invalid("workingTime.holidays", "%q is not a date: write YYYY-MM-DD, for example 2026-12-25.", clip(h))
		}
		hol = append(hol, h)
	}
	slices.Sort(hol)
	hol = slices.Compact(hol)
	if len(hol) > maxHolidays {
		return apperr.Invalid("workingTime.holidays", "Name at most %d non-working dates (%d given).", maxHolidays, len(hol))
	}
	w.Holidays = hol
	return nil
}

// clip keeps what an error message repeats of the input short.
func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

func parseDay(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for wd, name := range dayNames {
		full := strings.ToLower(time.Weekday(wd).String())
		if s == name || s == full {
			return time.Weekday(wd), true
		}
	}
	return 0, false
}

// parseClock reads "HH:MM" as the time since midnight; "24:00" only as an
// end.
func parseClock(s string, end bool) (time.Duration, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || h == 24 && (m != 0 || !end) {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, true
}

// parseDate reads "YYYY-MM-DD" exactly (a real date, four-digit year) as
// the days since 1970-01-01.
func parseDate(s string) (int64, bool) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil || d.Format(time.DateOnly) != s {
		return 0, false
	}
	return dayNumber(d), true
}

// dayNumber is the day of a midnight UTC time, counted from 1970-01-01.
func dayNumber(midnight time.Time) int64 {
	return midnight.Unix() / 86400
}

// zones caches loaded time zones: time.LoadLocation reads and parses the
// zone's file on every call. The IANA database bounds the cache.
var zones sync.Map // name → *time.Location

// loadZone loads an IANA time zone. "Local" (the server's own zone, which
// says nothing of the customer's) and "" (which LoadLocation reads as UTC)
// are refused.
func loadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "" || name == "Local" || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, apperr.Invalid("workingTime.timeZone", "not a time zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// calendar is a validated WorkingTime ready to count with.
type calendar struct {
	loc        *time.Location
	days       [7]bool
	start, end time.Duration // local wall clock since midnight
	holidays   map[int64]bool
}

// compile turns a stored calendar into one to count with; nil for none (or
// for one that no longer loads, which Validate would have refused).
func (w *WorkingTime) compile() *calendar {
	if w == nil {
		return nil
	}
	c := &calendar{holidays: map[int64]bool{}}
	var err error
	if c.loc, err = loadZone(w.TimeZone); err != nil {
		return nil
	}
	for _, d := range w.Days {
		wd, ok := parseDay(d)
		if !ok {
			return nil
		}
		c.days[wd] = true
	}
	var ok1, ok2 bool
	c.start, ok1 = parseClock(w.Start, false)
	c.end, ok2 = parseClock(w.End, true)
	if !ok1 || !ok2 || c.end <= c.start {
		return nil
	}
	for _, h := range w.Holidays {
		if n, ok := parseDate(h); ok {
			c.holidays[n] = true
		}
	}
	return c
}

const day = 24 * time.Hour

// working is how much of [a, b) is working time. The interval is cut where
// the zone's offset changes (ZoneBounds); within a piece, local wall clock
// is the instant plus a fixed offset, so each local day's hours are one
// span of it.
func (c *calendar) working(a, b time.Time) time.Duration {
	var total time.Duration
	for a.Before(b) {
		in := a.In(c.loc)
		_, off := in.Zone()
		_, next := in.ZoneBounds()
		piece := b
		if !next.IsZero() && next.Before(b) {
			piece = next
		}
		total += c.workingAt(a, piece, time.Duration(off)*time.Second)
		a = piece
	}
	return total
}

// workingAt counts [a, b) while the zone's offset is off.
func (c *calendar) workingAt(a, b time.Time, off time.Duration) time.Duration {
	la, lb := a.UTC().Add(off), b.UTC().Add(off) // wall clock, written as UTC
	var total time.Duration
	for d := la.Truncate(day); d.Before(lb); d = d.Add(day) {
		if !c.days[d.Weekday()] || c.holidays[dayNumber(d)] {
			continue
		}
		s, e := d.Add(c.start), d.Add(c.end)
		if s.Before(la) {
			s = la
		}
		if e.After(lb) {
			e = lb
		}
		if s.Before(e) {
			total += e.Sub(s)
		}
	}
	return total
}

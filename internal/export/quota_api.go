package export

import (
	"net/http"
	"sort"
	"time"

	"ferry/internal/apperr"
)

// The admin page's view of Jira's points quota for the site: what the pool
// holds (as Jira's headers say), what Ferry spent today in this process —
// in all and per data source — and the exports the quota refused. Counters
// only: no Customer Data, nothing stored.

type quotaJSON struct {
	Known         bool          `json:"known"`         // Jira has reported a points pool
	Pool          string        `json:"pool"`          // "app" (shared by every site using Ferry) or "site"
	Quota         int           `json:"quota"`         // points per window
	WindowSeconds int           `json:"windowSeconds"` // Jira: 3600
	Remaining     int           `json:"remaining"`     // points left (at least, when not reported)
	Reported      bool          `json:"reported"`      // Remaining is Jira's own figure
	Reset         *time.Time    `json:"reset,omitempty"`
	Pacing        bool          `json:"pacing"`     // exports are being slowed to fit the pool
	FitsIssues    int           `json:"fitsIssues"` // about how many issues an export can read before the reset
	SpentToday    int           `json:"spentToday"` // points, UTC day, this process
	Sources       []sourceSpend `json:"sources"`
	OtherPoints   int           `json:"otherPoints"` // the app's pages, metadata
	Refused       []refusalJSON `json:"refused"`
	Note          string        `json:"note"`
}

type sourceSpend struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Points int    `json:"points"`
}

type refusalJSON struct {
	At        time.Time `json:"at"`
	Source    string    `json:"source"` // the data source's name
	Need      int       `json:"need"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

func (a *App) getQuota(w http.ResponseWriter, r *http.Request, c appCtx) error {
	ro, err := a.role(r, c)
	if err != nil {
		return err
	}
	if !ro.Admin {
		return apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can see Ferry's use of the Jira API quota.")
	}
	out := quotaJSON{Sources: []sourceSpend{}, Refused: []refusalJSON{},
		Note: "Points Ferry spent for this site today (UTC), as counted by this Ferry server."}
	t := a.Feeds.tenantLimits(c.p.TenantID())
	if t == nil {
		return writeJSON(w, 200, out)
	}
	st := t.Quota()
	if st.Known {
		out.Known, out.Quota, out.WindowSeconds, out.Remaining, out.Reported, out.Pacing = true, st.Quota, int(st.Window/time.Second), st.Remaining, st.Reported, st.Pacing
		out.Pool = "app"
		if st.Policy == "tenant-app-quota" {
			out.Pool = "site"
		}
		if !st.Reset.IsZero() {
			reset := st.Reset.UTC()
			out.Reset = &reset
		}
		out.FitsIssues = max(int(float64(st.Remaining)/pointsPerRowFields), 0)
	}
	names := map[string]string{}
	if list, err := a.Sources.List(r.Context(), c.props, c.p.TenantID()); err == nil {
		for _, ds := range list {
			names[ds.ID] = ds.Name
		}
	}
	for label, points := range t.SpentToday() {
		out.SpentToday += points
		name, ok := names[label]
		if !ok && label != "app" && label != "other" {
			// A source deleted today: its record stays in Jira.
			if ds, err := a.Sources.Get(r.Context(), c.props, c.p.TenantID(), label); err == nil {
				name, ok = ds.Name, true
			}
		}
		if ok {
			out.Sources = append(out.Sources, sourceSpend{ID: label, Name: name, Points: points})
		} else {
			out.OtherPoints += points
		}
	}
	sort.Slice(out.Sources, func(i, j int) bool { return out.Sources[i].Points > out.Sources[j].Points })
	for _, rf := range a.Feeds.refusalsOf(c.p.TenantID()) {
		name := names[rf.Source]
		if name == "" {
			name = rf.Source
		}
		out.Refused = append(out.Refused, refusalJSON{At: rf.At, Source: name, Need: rf.Need, Remaining: rf.Remaining, Reset: rf.Reset})
	}
	return writeJSON(w, 200, out)
}

package console

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/errortrack"
	"ferry/internal/scrub"
	"ferry/internal/staff"
)

// The error events pages (P5): the scrubbed events error tracking keeps
// locally, newest first, and one event with its stack and its way to
// Sentry. Everything shown was scrubbed before it was stored; reading an
// event that came from a tenant's pages is recorded in the audit trail.

// errorsCategory is the statement's name for what these pages show.
const errorsCategory = "Real-time Error Tracking Data"

var (
	errorsTmpl     = page("errors.html")
	errorEventTmpl = page("error-event.html")
)

// Filter input: a project is digits (a DSN's) or errortrack.ServerProject;
// levels are Sentry's.
var (
	projectRE   = regexp.MustCompile(`^([0-9]{1,16}|` + errortrack.ServerProject + `)$`)
	errorLevels = []string{"fatal", "error", "warning", "info", "debug"}
)

const maxReleaseLen = 200

type errorsData struct {
	Project, Release, Level string
	Levels                  []string
	Events                  []errortrack.EventSummary
	Next                    string // cursor of the next page
	First                   bool   // this is the newest page
	Upstream                string // where events are forwarded; "" : kept locally only
	Outbox                  errortrack.Outbox
	Retention               int
}

func (c *Console) handleErrors(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	q := r.URL.Query()
	d := errorsData{Project: strings.TrimSpace(q.Get("project")), Release: strings.TrimSpace(q.Get("release")),
		Level: strings.TrimSpace(q.Get("level")), Levels: errorLevels, Upstream: c.d.ErrorsUpstream, Retention: c.d.Config.ErrorsRetentionDays}
	switch {
	case d.Project != "" && !projectRE.MatchString(d.Project):
		c.errorPage(w, r, &p, apperr.Invalid("project", "a project is the number at the end of a DSN, or %q for Ferry's own errors", errortrack.ServerProject))
		return
	case len(d.Release) > maxReleaseLen:
		c.errorPage(w, r, &p, apperr.Invalid("release", "at most %d characters", maxReleaseLen))
		return
	case d.Level != "" && !slices.Contains(errorLevels, d.Level):
		c.errorPage(w, r, &p, apperr.Invalid("level", "one of %s", strings.Join(errorLevels, ", ")))
		return
	}
	cursor := q.Get("cursor")
	d.First = cursor == ""
	pg, err := c.d.Errors.Recent(r.Context(), errortrack.Filter{Project: d.Project, Release: d.Release, Level: d.Level, Cursor: cursor})
	if errors.Is(err, errortrack.ErrBadCursor) {
		c.errorPage(w, r, &p, apperr.Invalid("cursor", "not a page of this list; start again from the newest events"))
		return
	}
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	d.Events, d.Next = pg.Events, pg.Next
	if d.Outbox, err = c.d.Errors.Outbox(r.Context()); err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	d.Outbox.LastError = scrub.Logs.Text(d.Outbox.LastError)
	c.Render(w, r, &p, errorsTmpl, http.StatusOK, "Error events", d)
}

// eventView is one stored event as the detail page shows it.
type eventView struct {
	errortrack.EventSummary
	Type, Message  string
	Exceptions     []exceptionView
	Runtime        string
	App            string
	Request        string // method and URL (its query string was removed when scrubbed)
	Tags           [][2]string
	Breadcrumbs    int
	User           string // the user's pseudonym, scoped by the tenant ("" : none)
	Occurrences    errortrack.Occurrences
	Forwarding     errortrack.Forwarding
	Upstream       string
	TenantSpecific bool
}

type exceptionView struct {
	Type, Value, Mechanism string
	Frames                 []frameView // most recent call first
}

type frameView struct {
	Function, File string
	Line, Column   int
	InApp          bool
	Context        string
}

func (c *Console) handleErrorEvent(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.errorPage(w, r, &p, apperr.New(apperr.ENOTFOUND, "no stored error event with this id"))
		return
	}
	sum, payload, err := c.d.Errors.Event(ctx, id)
	if errors.Is(err, errortrack.ErrNoEvent) {
		c.errorPage(w, r, &p, apperr.New(apperr.ENOTFOUND, "no stored error event with this id: it may have passed the %d-day retention", c.d.Config.ErrorsRetentionDays))
		return
	}
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	v, err := viewEvent(sum, payload)
	if err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	if v.Occurrences, err = c.d.Errors.Occurrences(ctx, sum); err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	if v.Forwarding, err = c.d.Errors.Forwarding(ctx, sum); err != nil {
		c.errorPage(w, r, &p, err)
		return
	}
	v.Forwarding.LastError = scrub.Logs.Text(v.Forwarding.LastError)
	v.Upstream = c.d.ErrorsUpstream
	// An event that came from the app's pages inside a tenant's Jira
	// carries that tenant's pseudonym of its user: reading it is recorded,
	// and if it cannot be recorded it is not shown. (Which tenant is not
	// kept: the relay removes the tenant tag.)
	if v.TenantSpecific {
		ev := auditEvent(p, "errors.view", errorsCategory, "error event "+sum.Project+"/"+sum.EventID)
		if err := c.d.Audit.Record(ctx, ev); err != nil {
			c.errorPage(w, r, &p, apperr.Wrap(err, apperr.EUNAVAILABLE, "the access could not be recorded, so the event is not shown"))
			return
		}
	}
	c.Render(w, r, &p, errorEventTmpl, http.StatusOK, "Error event "+strconv.FormatInt(id, 10), v)
}

// viewEvent reads a stored (already scrubbed) event.
func viewEvent(sum errortrack.EventSummary, payload []byte) (eventView, error) {
	v := eventView{EventSummary: sum}
	var ev scrub.SentryEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return v, apperr.Wrap(err, apperr.EINTERNAL, "stored event %d cannot be read", sum.ID)
	}
	v.Message = ev.Message
	if ev.Exception != nil {
		for i := len(ev.Exception.Values) - 1; i >= 0; i-- { // the error raised last first, as Sentry shows them
			x := ev.Exception.Values[i]
			xv := exceptionView{Type: x.Type, Value: x.Value}
			if x.Mechanism != nil {
				xv.Mechanism = x.Mechanism.Type
				if x.Mechanism.Handled != nil && !*x.Mechanism.Handled {
					xv.Mechanism += " (unhandled)"
				}
			}
			if x.Stacktrace != nil {
				fr := x.Stacktrace.Frames
				for j := len(fr) - 1; j >= 0; j-- { // Sentry sends the oldest call first
					f := fr[j]
					file := cmp.Or(f.Filename, f.AbsPath, f.Module, f.Package)
					fv := frameView{Function: f.Function, File: file, Context: strings.TrimSpace(f.ContextLine)}
					if f.Lineno != nil {
						fv.Line = *f.Lineno
					}
					if f.Colno != nil {
						fv.Column = *f.Colno
					}
					fv.InApp = f.InApp != nil && *f.InApp
					xv.Frames = append(xv.Frames, fv)
				}
			}
			v.Exceptions = append(v.Exceptions, xv)
		}
		if len(v.Exceptions) > 0 {
			v.Type = v.Exceptions[0].Type
			if v.Message == "" {
				v.Message = v.Exceptions[0].Value
			}
		}
	}
	if ev.Contexts != nil {
		if rt := ev.Contexts.Runtime; rt != nil {
			v.Runtime = strings.TrimSpace(string(rt.Name) + " " + string(rt.Version))
		}
		if app := ev.Contexts.App; app != nil {
			v.App = strings.TrimSpace(string(app.AppName) + " " + string(app.AppVersion))
		}
	}
	if ev.Request != nil && ev.Request.URL != "" {
		v.Request = strings.TrimSpace(ev.Request.Method + " " + ev.Request.URL)
	}
	for k, val := range ev.Tags {
		v.Tags = append(v.Tags, [2]string{k, val})
	}
	slices.SortFunc(v.Tags, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	if ev.Breadcrumbs != nil {
		v.Breadcrumbs = len(ev.Breadcrumbs.Values)
	}
	if ev.User != nil {
		v.User = ev.User.ID
	}
	v.TenantSpecific = v.User != ""
	return v, nil
}

// ForwardingWords says the event's way to Sentry in a few words.
func (v eventView) ForwardingWords(now time.Time) string {
	f, upstream := v.Forwarding, v.Upstream
	switch f.State {
	case errortrack.ForwardDelivered:
		return "delivered to " + upstream + " " + whenOrDash(f.DeliveredAt)
	case errortrack.ForwardQueued:
		return "queued: " + strconv.Itoa(f.Attempts) + " attempts so far, next in " + humanAge(f.NextAttempt.Sub(now))
	case errortrack.ForwardParked:
		return "parked: Sentry refused it for good after " + strconv.Itoa(f.Attempts) + " attempts"
	}
	if upstream == "" {
		return "kept locally only: no upstream Sentry is configured"
	}
	return "kept locally only: it arrived while no upstream Sentry was configured"
}

// ErrorsUpstreamOf describes a Sentry DSN for the console: host and
// project, never the key.
func ErrorsUpstreamOf(dsn errortrack.DSN) string {
	return dsn.Host + dsn.Path + " (project " + dsn.Project + ")"
}

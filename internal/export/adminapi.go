package export

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/jira"
)

// The admin page's API: settings, every token of the site and its history,
// deleted sources' history. Jira administrators only — users Jira says hold
// the ADMINISTER global permission, asked on every call.

// requireAdmin is the one check of the admin endpoints.
func (a *App) requireAdmin(r *http.Request, c appCtx, refusal error) (*viewer, error) {
	v, err := a.viewer(r, c)
	if err != nil {
		return nil, err
	}
	ok, err := v.isAdmin()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, refusal
	}
	return v, nil
}

type audienceJSON struct {
	Everyone bool         `json:"everyone"`
	Groups   []string     `json:"groups"`
	Users    []personJSON `json:"users"`
}

type settingsJSON struct {
	TokenMaxDays    int          `json:"tokenMaxDays"`
	MaxTokenMaxDays int          `json:"maxTokenMaxDays"`
	Creators        audienceJSON `json:"creators"`
	Exporters       audienceJSON `json:"exporters"`
	Projects        []ProjectRef `json:"projects"`
	AllowedNetworks []string     `json:"allowedNetworks"`
}

func (a *App) settingsOut(r *http.Request, c appCtx, st Settings) settingsJSON {
	names := a.names(r, c, append(slices.Clone(st.Creators.Users), st.Exporters.Users...)...)
	aud := func(x Audience) audienceJSON {
		out := audienceJSON{Everyone: x.Everyone, Groups: nonNil(x.Groups), Users: []personJSON{}}
		for _, id := range x.Users {
			out.Users = append(out.Users, personJSON{AccountID: id, DisplayName: nameOf(names, id)})
		}
		return out
	}
	projects := st.Projects
	if projects == nil {
		projects = []ProjectRef{}
	}
	return settingsJSON{TokenMaxDays: st.TokenMaxDays, MaxTokenMaxDays: a.MaxDays, Creators: aud(st.Creators),
		Exporters: aud(st.Exporters), Projects: projects, AllowedNetworks: nonNil(st.AllowedNetworks)}
}

func (a *App) getSettings(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.requireAdmin(r, c, errSettingsAdmins)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, a.settingsOut(r, c, v.Settings))
}

// settingsInput is what the admin page sends: projects by key.
type settingsInput struct {
	TokenMaxDays    int      `json:"tokenMaxDays"`
	Creators        Audience `json:"creators"`
	Exporters       Audience `json:"exporters"`
	Projects        []string `json:"projects"`
	AllowedNetworks []string `json:"allowedNetworks"`
}

// putSettings saves the settings once their form is right and Jira knows
// every group, user and project they name; anything wrong names its field
// and changes nothing.
func (a *App) putSettings(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if _, err := a.requireAdmin(r, c, errSettingsAdmins); err != nil {
		return err
	}
	var in settingsInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	st := Settings{TokenMaxDays: in.TokenMaxDays, Creators: in.Creators, Exporters: in.Exporters, AllowedNetworks: in.AllowedNetworks}
	for _, k := range in.Projects {
		st.Projects = append(st.Projects, ProjectRef{Key: k})
	}
	if err := st.check(a.MaxDays); err != nil {
		return err
	}
	var err error
	for _, x := range []struct {
		field string
		aud   *Audience
	}{{"creators", &st.Creators}, {"exporters", &st.Exporters}} {
		if x.aud.Groups, err = a.checkGroups(r, c, x.field+".groups", x.aud.Groups); err != nil {
			return err
		}
		if err := a.checkUsers(r, c, x.field+".users", x.aud.Users); err != nil {
			return err
		}
	}
	if len(st.Projects) > 0 {
		keys := make([]string, len(st.Projects))
		for i, p := range st.Projects {
			keys[i] = p.Key
		}
		// As the administrator: a project they cannot see is not theirs to name.
		found, err := c.user.ProjectsByKey(r.Context(), keys)
		if err != nil {
			return err
		}
		for i, p := range st.Projects {
			j := slices.IndexFunc(found, func(f jira.Project) bool { return strings.EqualFold(f.Key, p.Key) })
			if j < 0 {
				return apperr.Invalid("projects", "Jira has no project with the key %q that you can see.", p.Key)
			}
			st.Projects[i] = ProjectRef{ID: found[j].ID, Key: found[j].Key}
		}
	}
	saved, err := a.Sources.SaveSettings(r.Context(), c.props, c.p.TenantID(), st, a.MaxDays)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, a.settingsOut(r, c, saved))
}

// findUsers is the admin page's user picker, asked of Jira as the
// administrator (Jira's own "browse users" permission applies).
func (a *App) findUsers(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if _, err := a.requireAdmin(r, c, errAdminsOnly); err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("query"))
	out := []personJSON{}
	if q == "" {
		return writeJSON(w, 200, out)
	}
	users, err := c.user.SearchUsers(r.Context(), q, 20)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Active && u.AccountID != "" {
			out = append(out, personJSON{AccountID: u.AccountID, DisplayName: u.DisplayName})
		}
	}
	return writeJSON(w, 200, out)
}

// findGroups is the group picker, asked of Jira as the signed-in user:
// Jira decides whether they may browse groups.
func (a *App) findGroups(w http.ResponseWriter, r *http.Request, c appCtx) error {
	q := strings.TrimSpace(r.URL.Query().Get("query"))
	names, err := c.user.FindGroups(r.Context(), q, 20)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, nonNil(names))
}

type siteTokenJSON struct {
	tokenJSON
	Owner  personJSON `json:"owner"`
	Status string     `json:"status"`
}

func (a *App) listAllTokens(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.requireAdmin(r, c, apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can see everyone's tokens."))
	if err != nil {
		return err
	}
	list, err := a.Tokens.ListAll(r.Context(), c.p.TenantID(), v.Settings.TokenMaxDays)
	if err != nil {
		return err
	}
	var ids []string
	for _, t := range list {
		ids = append(ids, t.OwnerAccountID)
	}
	names := a.names(r, c, ids...)
	out := make([]siteTokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, siteTokenJSON{tokenJSON: tokenOut(t.Token), Status: t.Status,
			Owner: personJSON{AccountID: t.OwnerAccountID, DisplayName: nameOf(names, t.OwnerAccountID)}})
	}
	return writeJSON(w, 200, out)
}

func (a *App) revokeAnyToken(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if _, err := a.requireAdmin(r, c, apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can revoke other people's tokens.")); err != nil {
		return err
	}
	if err := a.Tokens.RevokeAny(r.Context(), c.p.TenantID(), c.p.AccountID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *App) revokeUsersTokens(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if _, err := a.requireAdmin(r, c, apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can revoke other people's tokens.")); err != nil {
		return err
	}
	id := r.PathValue("accountId")
	if strings.TrimSpace(id) == "" {
		return apperr.Invalid("accountId", "Name the user whose tokens to revoke.")
	}
	n, err := a.Tokens.RevokeOwner(r.Context(), c.p.TenantID(), c.p.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, map[string]int{"revoked": n})
}

type tokenEventJSON struct {
	Kind    string     `json:"kind"`
	At      time.Time  `json:"at"`
	TokenID string     `json:"tokenId"`
	Label   string     `json:"label"`
	Hint    string     `json:"hint"`
	Owner   personJSON `json:"owner"`
	By      string     `json:"by"` // display name; "Ferry" for an expiry
}

// historyLimit is how much token history one page shows.
const historyLimit = 500

func (a *App) tokenHistory(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if _, err := a.requireAdmin(r, c, errAdminsOnly); err != nil {
		return err
	}
	events, err := a.Tokens.History(r.Context(), c.p.TenantID(), historyLimit)
	if err != nil {
		return err
	}
	var ids []string
	for _, e := range events {
		ids = append(ids, e.OwnerAccountID, e.ActorAccountID)
	}
	names := a.names(r, c, ids...)
	out := make([]tokenEventJSON, 0, len(events))
	for _, e := range events {
		j := tokenEventJSON{Kind: e.Kind, At: e.At, TokenID: e.TokenID, Label: e.Label, Hint: e.Hint}
		if e.OwnerAccountID != "" {
			j.Owner = personJSON{AccountID: e.OwnerAccountID, DisplayName: nameOf(names, e.OwnerAccountID)}
		}
		switch {
		case e.ActorErased:
			j.By = "Former user"
		case e.ActorAccountID == "":
			j.By = "Ferry"
		default:
			j.By = nameOf(names, e.ActorAccountID)
		}
		out = append(out, j)
	}
	return writeJSON(w, 200, out)
}

type deletedSourceJSON struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Owner   personJSON    `json:"owner"`
	Deleted time.Time     `json:"deleted"`
	History []historyJSON `json:"history"`
}

func (a *App) deletedSources(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if _, err := a.requireAdmin(r, c, errAdminsOnly); err != nil {
		return err
	}
	list, err := a.Sources.Deleted(r.Context(), c.props)
	if err != nil {
		return err
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.Owner)
		for _, h := range d.History {
			ids = append(ids, h.By, h.To)
		}
	}
	names := a.names(r, c, ids...)
	out := make([]deletedSourceJSON, 0, len(list))
	for _, d := range list {
		out = append(out, deletedSourceJSON{ID: d.ID, Name: d.Name, Deleted: d.Deleted, History: historyOut(d.History, names),
			Owner: personJSON{AccountID: d.Owner, DisplayName: nameOf(names, d.Owner)}})
	}
	return writeJSON(w, 200, out)
}

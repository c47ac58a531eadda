package export

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"ferry/internal/apperr"
)

// A site's settings are its Jira administrators' choices, stored in the
// customer's own site like the data sources (a Connect app property, or
// Forge storage on Forge: PropertyStore). Jira administrators — users Jira
// says hold the ADMINISTER global permission — may always do everything;
// the settings say who else may.

// Settings are a site admin's choices.
type Settings struct {
	TokenMaxDays int `json:"tokenMaxDays"` // access token lifetime policy
	// Creators may create data sources (Jira administrators always may).
	Creators Audience `json:"creators"`
	// Exporters may create access tokens and pull feeds (Jira
	// administrators always may).
	Exporters Audience `json:"exporters"`
	// Projects, when not empty, are the only projects whose issues any feed
	// of the site returns: Ferry intersects every data source's JQL with
	// them (RestrictJQL).
	Projects []ProjectRef `json:"projects,omitempty"`
	// AllowedNetworks, when not empty, are the address ranges (CIDR) from
	// which the site's feeds answer.
	AllowedNetworks []string `json:"allowedNetworks,omitempty"`
}

// Audience is who, besides Jira administrators, may do something.
type Audience struct {
	Everyone bool     `json:"everyone"`
	Groups   []string `json:"groups"`
	Users    []string `json:"users"` // accountIds
}

// ProjectRef names a project by its id (what the JQL restriction uses: it
// survives a change of key) and its key (what people read).
type ProjectRef struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// includes reports whether the user (by accountId and groups) is in the
// audience; groups is asked only when it could matter.
func (a Audience) includes(accountID string, groups func() ([]string, error)) (bool, error) {
	if a.Everyone || slices.Contains(a.Users, accountID) {
		return true, nil
	}
	if len(a.Groups) == 0 {
		return false, nil
	}
	gs, err := groups()
	if err != nil {
		return false, err
	}
	for _, g := range gs {
		if slices.Contains(a.Groups, g) {
			return true, nil
		}
	}
	return false, nil
}

// defaultSettings are a site's settings before an administrator saves any:
// only administrators create data sources, everyone may pull feeds, every
// project and address is allowed.
func defaultSettings(maxDays int) Settings {
	return Settings{TokenMaxDays: maxDays, Creators: Audience{Groups: []string{}, Users: []string{}},
		Exporters: Audience{Everyone: true, Groups: []string{}, Users: []string{}}}
}

// storedSettings reads what earlier versions stored too: creatorGroups,
// which named the groups that could create data sources.
type storedSettings struct {
	Settings
	Creators      *Audience `json:"creators"`
	Exporters     *Audience `json:"exporters"`
	CreatorGroups []string  `json:"creatorGroups"`
}

// Settings returns the site's admin settings, with defaults.
func (s *Sources) Settings(ctx context.Context, ps PropertyStore, tenantID string, defaultMaxDays int) (Settings, error) {
	v, err := s.freshOr(ctx, tenantID+"\x00"+settingsKey, func(ctx context.Context) (any, error) {
		st := defaultSettings(defaultMaxDays)
		var raw json.RawMessage
		if _, err := ps.Get(ctx, settingsKey, &raw); err != nil {
			return st, err
		}
		if len(raw) > 0 {
			var stored storedSettings
			if err := json.Unmarshal(raw, &stored); err != nil {
				return st, fmt.Errorf("settings property: %w", err)
			}
			st.TokenMaxDays, st.Projects, st.AllowedNetworks = stored.TokenMaxDays, stored.Projects, stored.AllowedNetworks
			switch {
			case stored.Creators != nil:
				st.Creators = *stored.Creators
			case len(stored.CreatorGroups) > 0:
				st.Creators.Groups = stored.CreatorGroups
			}
			if stored.Exporters != nil {
				st.Exporters = *stored.Exporters
			}
		}
		return st, nil
	})
	if err != nil {
		return defaultSettings(defaultMaxDays), err
	}
	st := v.(Settings)
	if st.TokenMaxDays <= 0 || st.TokenMaxDays > defaultMaxDays {
		st.TokenMaxDays = defaultMaxDays
	}
	return st, nil
}

// Limits on what one settings property holds (Jira's 32 KB).
const (
	maxAudienceUsers = 100
	maxProjects      = 100
	maxNetworks      = 100
)

// check validates the settings' form and puts them in canonical form; that
// named groups, users and projects exist is App.putSettings' to ask Jira.
func (st *Settings) check(maxDays int) error {
	if st.TokenMaxDays < 1 || st.TokenMaxDays > maxDays {
		return apperr.Invalid("tokenMaxDays", "Token lifetime must be between 1 and %d days.", maxDays)
	}
	for _, a := range []struct {
		field string
		aud   *Audience
	}{{"creators", &st.Creators}, {"exporters", &st.Exporters}} {
		groups, err := cleanNames(a.field+".groups", a.aud.Groups, maxGroups)
		if err != nil {
			return err
		}
		users, err := cleanNames(a.field+".users", a.aud.Users, maxAudienceUsers)
		if err != nil {
			return err
		}
		if a.aud.Everyone && len(groups)+len(users) > 0 {
			return apperr.Invalid(a.field+".groups", "Choose everyone, or name groups and users, not both.")
		}
		a.aud.Groups, a.aud.Users = nonNil(groups), nonNil(users)
	}
	var projects []ProjectRef
	for _, p := range st.Projects {
		key := strings.ToUpper(strings.TrimSpace(p.Key))
		if key == "" || slices.ContainsFunc(projects, func(q ProjectRef) bool { return q.Key == key }) {
			continue
		}
		projects = append(projects, ProjectRef{ID: strings.TrimSpace(p.ID), Key: key})
	}
	if len(projects) > maxProjects {
		return apperr.Invalid("projects", "Name at most %d projects.", maxProjects)
	}
	st.Projects = projects
	nets, err := ParseNetworks(st.AllowedNetworks)
	if err != nil {
		return err
	}
	st.AllowedNetworks = nil
	for _, n := range nets {
		st.AllowedNetworks = append(st.AllowedNetworks, n.String())
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SaveSettings stores an admin's settings, checked and in canonical form.
func (s *Sources) SaveSettings(ctx context.Context, ps PropertyStore, tenantID string, st Settings, maxDays int) (Settings, error) {
	if err := st.check(maxDays); err != nil {
		return st, err
	}
	if b, _ := json.Marshal(st); len(b) > maxPropertyBytes {
		return st, apperr.Invalid("exporters.users", "These settings are too large to store in Jira (%d KB of 32 KB); name groups instead of single users.", len(b)>>10)
	}
	if err := ps.Put(ctx, settingsKey, st); err != nil {
		return st, apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira did not save the settings; try again.")
	}
	s.forget(tenantID)
	return st, nil
}

// ParseNetworks reads an IP allowlist: CIDR ranges ("203.0.113.0/24",
// "2001:db8::/32") or single addresses. A range with host bits set is
// refused rather than guessed at: "10.1.2.3/8" is most likely a typo.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, apperr.Invalid("allowedNetworks", "%q is not an address range: write it in CIDR notation, such as 203.0.113.0/24 or 2001:db8::/32.", s)
			}
			if p.Addr().Zone() != "" {
				return nil, apperr.Invalid("allowedNetworks", "%q names an interface zone; write the range without it.", s)
			}
			if m := p.Masked(); m != p {
				return nil, apperr.Invalid("allowedNetworks", "%q has bits set beyond its /%d prefix: did you mean %s?", s, p.Bits(), m)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, apperr.Invalid("allowedNetworks", "%q is not an IP address or a CIDR range such as 203.0.113.0/24.", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			// ::ffff:a.b.c.d/n means an IPv4 range: keep it as one.
			if p.Bits() < 96 {
				return nil, apperr.Invalid("allowedNetworks", "%q mixes IPv4-mapped and plain IPv6 addresses; write the IPv4 range instead.", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) > maxNetworks {
		return nil, apperr.Invalid("allowedNetworks", "Name at most %d address ranges.", maxNetworks)
	}
	return out, nil
}

// allows reports whether addr is in one of the networks; an empty list
// allows every address.
func allows(networks []netip.Prefix, addr netip.Addr) bool {
	if len(networks) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, n := range networks {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

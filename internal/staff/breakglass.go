package staff

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"ferry/internal/apperr"
	"ferry/internal/audit"
)

// Reason limits for break-glass access. A reason is kept for good in the
// audit trail, so it must not carry personal data.
const (
	MinReasonLen = 10
	MaxReasonLen = 500
)

var ticketRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9#._:/-]{1,63}$`)

// CheckReason says what is wrong with a break-glass reason.
func CheckReason(reason string) error {
	reason = strings.TrimSpace(reason)
	switch n := utf8.RuneCountInString(reason); {
	case !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' }):
		return apperr.Invalid("reason", "plain text only: no control characters")
	case n < MinReasonLen:
		return apperr.Invalid("reason", "say why, in at least %d characters; it is recorded with your name", MinReasonLen)
	case n > MaxReasonLen:
		return apperr.Invalid("reason", "at most %d characters", MaxReasonLen)
	case emailRE.MatchString(reason):
		return apperr.Invalid("reason", "no email addresses: the reason is kept in the audit trail for good; refer to the ticket instead")
	}
	return nil
}

// CheckTicket says what is wrong with a ticket reference.
func CheckTicket(ticket string) error {
	if !ticketRE.MatchString(strings.TrimSpace(ticket)) || emailRE.MatchString(ticket) {
		return apperr.Invalid("ticket", "the support ticket that asked for this, e.g. SUP-1234 (letters, digits and # . _ : / -, at most 64)")
	}
	return nil
}

// Target is the one object a break-glass grant opens.
type Target struct {
	Tenant string // tenant id the object belongs to ("" if none)
	Object string // e.g. a request-log entry id
}

// Grant is permission to read one sensitive object once. Only BreakGlass
// makes one, after the audit row is committed; code that reads sensitive
// data demands a Grant, so there is no way to it that leaves no trace.
type Grant struct {
	perm   Permission
	target Target
	actor  Actor
}

// Permits reports whether g opens object under perm. A nil or zero Grant
// permits nothing.
func (g *Grant) Permits(perm Permission, object string) bool {
	return g != nil && g.perm != "" && g.perm == perm && g.target.Object == object && object != ""
}

// Actor is who the grant was given to.
func (g *Grant) Actor() Actor {
	if g == nil {
		return Actor{}
	}
	return g.actor
}

// BreakGlass records who opens what, in which role, why and for which
// ticket, and only then returns a Grant. A role without perm, a missing or
// bad reason or ticket is refused (and the refusal recorded).
func (s *Store) BreakGlass(ctx context.Context, p Principal, perm Permission, t Target, reason, ticket string) (*Grant, error) {
	info, ok := LookupPermission(perm)
	if !ok || !info.BreakGlass {
		return nil, apperr.New(apperr.EINTERNAL, "%s is not a break-glass permission", perm)
	}
	ev := audit.Event{Actor: p.Username, Role: string(p.Role), Action: string(perm), Category: info.Category,
		Tenant: t.Tenant, Object: t.Object, Reason: strings.TrimSpace(reason), Ticket: strings.TrimSpace(ticket), Outcome: audit.Refused}
	if !p.Can(perm) {
		ev.Reason = "role " + string(p.Role) + " lacks " + string(perm)
		ev.Ticket = ""
		if err := s.audit.Record(ctx, ev); err != nil {
			return nil, err
		}
		return nil, apperr.New(apperr.EFORBIDDEN, "your role (%s) may not do this", p.Role)
	}
	if err := errors.Join(CheckReason(reason), CheckTicket(ticket)); err != nil {
		// What was typed is not kept: it failed the checks that keep personal data out.
		ev.Reason, ev.Ticket = "no valid reason and ticket given", ""
		if rerr := s.audit.Record(ctx, ev); rerr != nil {
			return nil, rerr
		}
		if e := CheckReason(reason); e != nil {
			return nil, e
		}
		return nil, CheckTicket(ticket)
	}
	ev.Outcome = audit.Allowed
	if err := s.audit.Record(ctx, ev); err != nil {
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "the access could not be recorded, so it is not allowed")
	}
	return &Grant{perm: perm, target: t, actor: p.Actor()}, nil
}

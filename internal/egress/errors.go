package egress

import (
	"errors"
	"strings"
)

// ErrDestinationRefused is matched (errors.Is) by every refusal of the gate:
// a host outside the category's allowlist, a forbidden scheme, a refused
// address after DNS resolution, or a redirect to any of those.
var ErrDestinationRefused = errors.New("egress: destination refused")

// RefusedError says which category refused which destination and why.
// Dest never contains a path, query or userinfo, so it is safe to log.
type RefusedError struct {
	Category Category
	Dest     string
	Reason   string
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	b.WriteString(ErrDestinationRefused.Error())
	if e.Category != "" {
		b.WriteString(" (" + string(e.Category) + ")")
	}
	if e.Dest != "" {
		b.WriteString(": " + e.Dest)
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

func (e *RefusedError) Unwrap() error { return ErrDestinationRefused }

// ConfigError is a start-up check failure: one line naming the setting.
type ConfigError struct {
	Setting string // environment variable name, e.g. FERRY_REGION
	Problem string
}

func (e *ConfigError) Error() string { return e.Setting + ": " + e.Problem }

func cfgErr(setting, problem string) error { return &ConfigError{Setting: setting, Problem: problem} }

package jirasim

import (
	"context"
	"errors"
	"strings"
	"time"
)

// SetClock replaces the site's clock (nil: the real one). Lifecycle tokens
// carry whole seconds and no jti, as Atlassian's do, so two callbacks of one
// kind signed in the same second for the same user are the same token; a
// test that reinstalls quickly moves the clock on instead of sleeping.
func (s *Sim) SetClock(f func() time.Time) {
	if f == nil {
		f = time.Now
	}
	s.setClock(f)
}

// Rename renames the site as Atlassian does: the site takes newBaseURL (see
// RenameSite), and every installed app receives an installed callback with
// the new baseUrl and displayUrl and everything else unchanged, its shared
// secret included. The new URL must still reach this sim (e.g. localhost
// instead of 127.0.0.1). Apps that refuse the callback are reported in the
// error and keep their record.
func (s *Sim) Rename(ctx context.Context, newBaseURL string) error {
	newBaseURL = strings.TrimSuffix(newBaseURL, "/")
	s.RenameSite(newBaseURL)
	var errs []error
	for _, key := range s.installedKeys() {
		s.mu.RLock()
		cur := s.installs[key]
		s.mu.RUnlock()
		if cur == nil {
			continue
		}
		next := &installation{Installation: cur.Installation, desc: cur.desc}
		next.Modules = append([]Module(nil), cur.Modules...)
		next.BaseURL, next.DisplayURL = newBaseURL, newBaseURL
		status, err := s.sendLifecycle(ctx, next, "installed", InstallValid)
		next.Status = status
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		if s.installs[key] == cur {
			s.installs[key] = next
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (s *Sim) installedKeys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.installs))
	for k := range s.installs {
		keys = append(keys, k)
	}
	return keys
}

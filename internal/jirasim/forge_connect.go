package jirasim

import (
	"context"
	"errors"
	"fmt"
)

// Connect on Forge: a Connect app whose Forge version declares the same
// app.connect.key takes over the site's Connect installation. The site gets
// a Forge installation; the Connect lifecycle kept in connectModules sends
// the signed installed callback again, now carrying installationId beside
// clientKey (same shared secret); and the Forge app, which the site sees as
// upgraded, receives avi:forge:upgraded:app. The Forge app then reads the
// Connect app's properties with its system token.

// MigrateConnectToForge upgrades the Connect installation of
// app.ConnectKey to app. The Forge installation stands even if the app
// refuses a callback; the error says which.
func (s *Sim) MigrateConnectToForge(ctx context.Context, app ForgeApp) (ForgeInstallation, error) {
	if app.ConnectKey == "" {
		return ForgeInstallation{}, errors.New("jirasim: the Forge app declares no app.connect.key")
	}
	s.mu.RLock()
	cur := s.installs[app.ConnectKey]
	s.mu.RUnlock()
	if cur == nil {
		return ForgeInstallation{}, fmt.Errorf("jirasim: Connect app %q is not installed on this site", app.ConnectKey)
	}
	if cur.InstallationID != "" {
		return ForgeInstallation{}, fmt.Errorf("jirasim: Connect app %q already runs on Forge (%s)", app.ConnectKey, cur.InstallationID)
	}
	fi, err := s.addForgeInstall(app)
	if err != nil {
		return ForgeInstallation{}, err
	}
	next := &installation{Installation: cur.Installation, desc: cur.desc}
	next.Modules = append([]Module(nil), cur.Modules...)
	next.InstallationID = fi.ID
	var errs []error
	status, err := s.sendLifecycle(ctx, next, "installed", InstallValid)
	next.Status = status
	if err != nil {
		errs = append(errs, err)
	}
	// The site links the two whatever the app answered: the Forge upgrade
	// has happened on Atlassian's side.
	s.mu.Lock()
	if s.installs[app.ConnectKey] == cur {
		s.installs[app.ConnectKey] = next
	}
	s.mu.Unlock()
	if err := s.deliverLifecycle(ctx, fi.ID, ForgeUpgradedEvent); err != nil {
		errs = append(errs, err)
	}
	out, _ := s.ForgeInstallation(fi.ID)
	return out, errors.Join(errs...)
}

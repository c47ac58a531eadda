// Package forgeapp is the deployable Forge app folder: the Custom UI build
// in static/ (made by ./build from internal/web, checked current by
// internal/web's TestCustomUIBuildIsCurrent) and, once `ferry forge
// manifest` has written it, manifest.yml. `forge deploy` runs from here.
// The build is embedded so that `ferry demo` can lay the same app out for
// the simulated Jira.
package forgeapp

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed static
var static embed.FS

// Static is the Custom UI build, rooted at static/.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// WriteApp lays out a Forge app folder in dir: manifest.yml and static/.
func WriteApp(dir string, manifest []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.yml"), manifest, 0o644); err != nil {
		return err
	}
	return fs.WalkDir(Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "static", filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(Static(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

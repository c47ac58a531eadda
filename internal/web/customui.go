package web

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// The same pages as Forge Custom UI: Forge serves an app's Custom UI from
// its own CDN as static resources, one folder per resource with an
// index.html, and the page calls Ferry through @forge/bridge invokeRemote
// instead of with a Connect context token. The pages are rendered from the
// very templates the Connect pages use, with Forge set in the page data;
// app.js is the same file, bundled at build time with the bridge
// (forgeui/entry.js, by forge/build), so both platforms run one code.

// CustomUIPages are the Custom UI resources: resource key → page template.
var CustomUIPages = map[string]string{"data-sources": "data-sources", "admin": "admin"}

// CustomUIFiles renders the Custom UI build: for each resource its
// index.html, the stylesheet and bundle (the esbuild output of
// forgeui/entry.js), as relative path → content.
func CustomUIFiles(bundle []byte) (map[string][]byte, error) {
	css, ok := assets["app.css"]
	if !ok {
		return nil, fmt.Errorf("web: no app.css")
	}
	out := map[string][]byte{}
	for res, page := range CustomUIPages {
		var buf bytes.Buffer
		if err := pageTemplates[page].Execute(&buf, pageData{Forge: true}); err != nil {
			return nil, fmt.Errorf("web: render %s: %w", page, err)
		}
		out[res+"/index.html"] = buf.Bytes()
		out[res+"/app.css"] = css.body
		out[res+"/app.js"] = bundle
	}
	return out, nil
}

// WriteCustomUI writes the Custom UI build into dir (forge/static),
// replacing what is there.
func WriteCustomUI(dir string, bundle []byte) error {
	files, err := CustomUIFiles(bundle)
	if err != nil {
		return err
	}
	for res := range CustomUIPages {
		if err := os.RemoveAll(filepath.Join(dir, res)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CustomUIDiff lists the files under dir that differ from a fresh build
// with bundle (nil bundle: app.js is not compared), for the test that the
// committed build is current.
func CustomUIDiff(dir string, bundle []byte) ([]string, error) {
	want, err := CustomUIFiles(bundle)
	if err != nil {
		return nil, err
	}
	var diff []string
	for n, b := range want {
		if bundle == nil && filepath.Base(n) == "app.js" {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil || !bytes.Equal(got, b) {
			diff = append(diff, n)
		}
	}
	// Nothing else may sit in a resource folder: Forge uploads all of it.
	for res := range CustomUIPages {
		fs.WalkDir(os.DirFS(dir), res, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if _, ok := want[p]; !ok {
					diff = append(diff, p+" (not part of the build)")
				}
			}
			return nil
		})
	}
	sort.Strings(diff)
	return diff, nil
}

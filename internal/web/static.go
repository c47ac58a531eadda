package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
)

//go:embed static
var staticFS embed.FS

// asset is one embedded static file with its content hash.
type asset struct {
	body []byte
	typ  string
	hash string // first 12 hex digits of SHA-256: the ?v= of its URL
}

var assets = loadAssets()

func loadAssets() map[string]asset {
	out := map[string]asset{}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		typ := mime.TypeByExtension(path.Ext(e.Name()))
		if typ == "" {
			typ = "application/octet-stream"
		}
		out[e.Name()] = asset{body: b, typ: typ, hash: hex.EncodeToString(sum[:])[:12]}
	}
	return out
}

// assetURL is the template function that names a static file by content:
// a new build changes the URL, so browsers may cache each version forever.
func assetURL(name string) string {
	a, ok := assets[name]
	if !ok {
		panic("web: no static file " + name)
	}
	return "/static/" + name + "?v=" + a.hash
}

// handleStatic serves the embedded files. A request naming the current
// content hash is immutable; any other (an old or missing ?v=) is cached
// only briefly, so a deploy is picked up within minutes.
func handleStatic() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.PathValue("file")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.typ)
		if r.URL.Query().Get("v") == a.hash {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=300")
		}
		h.Set("ETag", `"`+a.hash+`"`)
		if r.Header.Get("If-None-Match") == `"`+a.hash+`"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(a.body)
	})
}

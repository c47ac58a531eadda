package console

import (
	"net/http"
)

// handleStatic serves the console's stylesheet (its only static file).
func handleStatic() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := staticFS.ReadFile("static/" + r.PathValue("file"))
		if err != nil || r.PathValue("file") != "console.css" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(b)
	})
}

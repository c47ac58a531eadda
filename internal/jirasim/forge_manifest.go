package jirasim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Reading a Forge manifest.yml, so the sim installs exactly what an app
// would deploy: its remotes, endpoint modules with their tokens, triggers,
// scheduled triggers, preUninstall, Custom UI pages and resources, scopes
// (list or map form, allowImpersonation), licensing and app.connect.key.
// Modules the sim does not play (connectModules, functions, …) are ignored.

type manifestDoc struct {
	App struct {
		ID      string `yaml:"id"`
		Connect *struct {
			Key string `yaml:"key"`
		} `yaml:"connect"`
		Licensing *struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"licensing"`
	} `yaml:"app"`
	Modules   map[string][]map[string]any `yaml:"modules"`
	Remotes   []map[string]any            `yaml:"remotes"`
	Resources []struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	} `yaml:"resources"`
	Permissions struct {
		Scopes any `yaml:"scopes"`
	} `yaml:"permissions"`
}

var manifestVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadForgeManifest reads a manifest.yml; resource paths resolve against
// its folder. See ParseForgeManifest.
func LoadForgeManifest(path string, vars map[string]string) (ForgeApp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ForgeApp{}, err
	}
	return ParseForgeManifest(b, filepath.Dir(path), vars)
}

// ParseForgeManifest reads a Forge manifest. ${NAME} is replaced from vars
// (an unset one is an error), relative resource paths resolve against dir,
// and a remote's baseUrl object form uses its default.
func ParseForgeManifest(data []byte, dir string, vars map[string]string) (ForgeApp, error) {
	var missing []string
	text := manifestVar.ReplaceAllStringFunc(string(data), func(m string) string {
		name := manifestVar.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return ForgeApp{}, fmt.Errorf("jirasim: manifest uses unset variables %s", strings.Join(missing, ", "))
	}
	var doc manifestDoc
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return ForgeApp{}, fmt.Errorf("jirasim: manifest: %w", err)
	}
	app := ForgeApp{ID: doc.App.ID, Remotes: map[string]string{}, Endpoints: map[string]ForgeEndpoint{}, Resources: map[string]string{}}
	if doc.App.Connect != nil {
		app.ConnectKey = doc.App.Connect.Key
	}
	if doc.App.Licensing != nil {
		app.Licensing = doc.App.Licensing.Enabled
	}
	var errs []error
	for _, r := range doc.Remotes {
		key := str(r["key"])
		switch b := r["baseUrl"].(type) {
		case string:
			app.Remotes[key] = b
		case map[string]any:
			app.Remotes[key] = str(b["default"])
		}
		if app.Remotes[key] == "" {
			errs = append(errs, fmt.Errorf("remote %q has no baseUrl", key))
		}
	}
	for _, r := range doc.Resources {
		p := r.Path
		if !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		app.Resources[r.Key] = p
	}
	for typ, mods := range doc.Modules {
		for _, m := range mods {
			key := str(m["key"])
			switch typ {
			case "endpoint":
				ep := ForgeEndpoint{Remote: str(m["remote"])}
				if route, ok := m["route"].(map[string]any); ok {
					ep.Route = str(route["path"])
				}
				if auth, ok := m["auth"].(map[string]any); ok {
					ep.SystemToken = enabled(auth["appSystemToken"])
					ep.UserToken = enabled(auth["appUserToken"])
				}
				app.Endpoints[key] = ep
			case "trigger":
				if ep := str(m["endpoint"]); ep != "" {
					app.Triggers = append(app.Triggers, ForgeTrigger{Key: key, Endpoint: ep, Events: strs(m["events"])})
				}
			case "scheduledTrigger":
				if ep := str(m["endpoint"]); ep != "" {
					app.Scheduled = append(app.Scheduled, ForgeScheduled{Key: key, Endpoint: ep, Interval: str(m["interval"])})
				}
			case "preUninstall":
				if ep := str(m["endpoint"]); ep != "" {
					if app.PreUninstall != "" {
						errs = append(errs, errors.New("more than one preUninstall module"))
					}
					app.PreUninstall = ep
				}
			default:
				res := str(m["resource"])
				if res == "" || !strings.Contains(typ, ":") {
					continue // UI Kit, functions and other modules the sim does not play
				}
				page := ForgePage{Type: typ, Key: key, Title: str(m["title"]), Resource: res}
				if rv, ok := m["resolver"].(map[string]any); ok {
					page.Endpoint = str(rv["endpoint"])
				}
				app.Pages = append(app.Pages, page)
			}
		}
	}
	sort.Slice(app.Pages, func(i, j int) bool { return app.Pages[i].Key < app.Pages[j].Key })
	sort.Slice(app.Triggers, func(i, j int) bool { return app.Triggers[i].Key < app.Triggers[j].Key })
	sort.Slice(app.Scheduled, func(i, j int) bool { return app.Scheduled[i].Key < app.Scheduled[j].Key })
	switch sc := doc.Permissions.Scopes.(type) {
	case nil:
	case []any:
		app.Scopes = strs(sc)
	case map[string]any:
		for name, v := range sc {
			app.Scopes = append(app.Scopes, name)
			if o, ok := v.(map[string]any); ok && o["allowImpersonation"] == true {
				app.Impersonation = append(app.Impersonation, name)
			}
		}
		sort.Strings(app.Scopes)
		sort.Strings(app.Impersonation)
	default:
		errs = append(errs, errors.New("permissions.scopes must be a list or a map"))
	}
	if err := errors.Join(errs...); err != nil {
		return app, fmt.Errorf("jirasim: manifest: %w", err)
	}
	return app, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func enabled(v any) bool {
	m, ok := v.(map[string]any)
	return ok && m["enabled"] == true
}

package jirasim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Forge's Key-Value Store as a remote reaches it: POST
// /forge/storage/kvs/v1/{get,set,delete,query} with the app system token as
// bearer (storage:app), JSON in and out, errors as {code, message}. Data
// belongs to the token's installation and goes with it on uninstall.
// Limits from the docs: keys of 1–500 characters matching
// /^(?!\s+$)[a-zA-Z0-9:._\s-#]+$/, values nested at most 32 deep; queries
// filter keys with BEGINS_WITH and return at most 20 entries a page.

const (
	forgeKVSPrefix   = "/forge/storage/kvs"
	kvsMaxKey        = 500
	kvsMaxDepth      = 32
	kvsMaxValue      = 240 << 10 // 240 KiB of JSON
	kvsDefaultLimit  = 10
	kvsMaxQueryLimit = 20
)

type kvsEntry struct {
	value            json.RawMessage
	created, updated time.Time
	expires          time.Time // zero: never
}

func (s *Sim) handleKVS(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := s.forge
		f.mu.Lock()
		f.count(&f.stats.StorageCalls, op)
		f.mu.Unlock()
		scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
			forgeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "send the app system token (x-forge-oauth-system) as Authorization: Bearer")
			return
		}
		ft, in, err := s.forgeTokenOf(cred)
		switch {
		case err != nil:
			forgeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", err.Error())
			return
		case ft.kind != tokenSystem:
			forgeError(w, http.StatusForbidden, "FORBIDDEN", "storage takes the app system token, not a user token")
			return
		case !slices.Contains(in.app.Scopes, "storage:app"):
			forgeError(w, http.StatusForbidden, "FORBIDDEN", "the app does not have the storage:app scope")
			return
		}
		raw, err := readBody(r)
		if err != nil {
			forgeError(w, http.StatusRequestEntityTooLarge, "MAX_SIZE", "the request body is too large")
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var req kvsRequest
		if err := dec.Decode(&req); err != nil {
			forgeError(w, http.StatusBadRequest, "BAD_REQUEST", "invalid request body: "+err.Error())
			return
		}
		switch op {
		case "get":
			s.kvsGet(w, in.ID, req)
		case "set":
			s.kvsSet(w, in.ID, req)
		case "delete":
			s.kvsDelete(w, in.ID, req)
		case "query":
			s.kvsQuery(w, in.ID, req)
		}
	}
}

type kvsRequest struct {
	Key     *string         `json:"key"`
	Value   json.RawMessage `json:"value"`
	Limit   *int            `json:"limit"`
	After   *string         `json:"after"`
	Where   []kvsWhere      `json:"where"`
	Options *struct {
		MetadataFields []string `json:"metadataFields"`
		TTL            *struct {
			Value int    `json:"value"`
			Unit  string `json:"unit"`
		} `json:"ttl"`
		KeyPolicy   string `json:"keyPolicy"`
		ReturnValue string `json:"returnValue"`
	} `json:"options"`
}

type kvsWhere struct {
	Property  string `json:"property"` // @forge/kvs sends property
	Field     string `json:"field"`
	Condition string `json:"condition"`
	Values    []any  `json:"values"`
}

// validKVSKey answers the documented error for a bad key.
func validKVSKey(w http.ResponseWriter, key *string) bool {
	switch {
	case key == nil || *key == "":
		forgeError(w, http.StatusBadRequest, "KEY_TOO_SHORT", "the key must not be empty")
		return false
	case utf8.RuneCountInString(*key) > kvsMaxKey:
		forgeError(w, http.StatusBadRequest, "KEY_TOO_LONG", fmt.Sprintf("the key exceeds %d characters", kvsMaxKey))
		return false
	}
	allSpace := true
	for _, c := range *key {
		space := unicode.IsSpace(c)
		allSpace = allSpace && space
		if !space && !(c < utf8.RuneSelf && (isNameChar(byte(c)) || strings.ContainsRune(":.-#", c))) {
			forgeError(w, http.StatusBadRequest, "INVALID_KEY", `the key does not match /^(?!\s+$)[a-zA-Z0-9:._\s-#]+$/`)
			return false
		}
	}
	if allSpace {
		forgeError(w, http.StatusBadRequest, "INVALID_KEY", "the key must not be only whitespace")
		return false
	}
	return true
}

// jsonDepth is the nesting depth of a JSON value (a scalar is 0).
func jsonDepth(raw []byte) int {
	depth, deepest, inStr, esc := 0, 0, false, false
	for _, c := range raw {
		switch {
		case esc:
			esc = false
		case inStr:
			esc = c == '\\'
			inStr = c != '"'
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func (s *Sim) metadata(out map[string]any, e *kvsEntry, fields []string) {
	for _, m := range fields {
		switch m {
		case "CREATED_AT":
			out["createdAt"] = e.created.UnixMilli()
		case "UPDATED_AT":
			out["updatedAt"] = e.updated.UnixMilli()
		case "EXPIRE_TIME":
			if !e.expires.IsZero() {
				out["expireTime"] = e.expires.UTC().Format(time.RFC3339)
			}
		}
	}
}

func (s *Sim) validMetadata(w http.ResponseWriter, req kvsRequest) bool {
	if req.Options == nil {
		return true
	}
	for _, m := range req.Options.MetadataFields {
		if m != "CREATED_AT" && m != "UPDATED_AT" && m != "EXPIRE_TIME" {
			forgeError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("options.metadataFields: %q is not CREATED_AT, UPDATED_AT or EXPIRE_TIME", m))
			return false
		}
	}
	return true
}

func metadataFields(req kvsRequest) []string {
	if req.Options == nil {
		return nil
	}
	return req.Options.MetadataFields
}

// entry returns a live entry (expired ones vanish); f.mu must be held.
func (s *Sim) kvsEntryLocked(id, key string) *kvsEntry {
	in := s.forge.installs[id]
	if in == nil {
		return nil
	}
	e := in.storage[key]
	if e != nil && !e.expires.IsZero() && !s.now().Before(e.expires) {
		delete(in.storage, key)
		return nil
	}
	return e
}

func (s *Sim) kvsGet(w http.ResponseWriter, id string, req kvsRequest) {
	if !validKVSKey(w, req.Key) || !s.validMetadata(w, req) {
		return
	}
	f := s.forge
	f.mu.Lock()
	e := s.kvsEntryLocked(id, *req.Key)
	var cp kvsEntry
	if e != nil {
		cp = *e
	}
	f.mu.Unlock()
	if e == nil {
		forgeError(w, http.StatusNotFound, "KEY_NOT_FOUND", "no value is stored under this key")
		return
	}
	out := map[string]any{"key": *req.Key, "value": cp.value}
	s.metadata(out, &cp, metadataFields(req))
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) kvsSet(w http.ResponseWriter, id string, req kvsRequest) {
	if !validKVSKey(w, req.Key) {
		return
	}
	v := bytes.TrimSpace(req.Value)
	switch {
	case len(v) == 0 || string(v) == "null":
		forgeError(w, http.StatusBadRequest, "BAD_REQUEST", "value is required: a string, boolean, number, array or object")
		return
	case len(v) > kvsMaxValue:
		forgeError(w, http.StatusBadRequest, "MAX_SIZE", fmt.Sprintf("the value exceeds %d bytes", kvsMaxValue))
		return
	case jsonDepth(v) > kvsMaxDepth:
		forgeError(w, http.StatusBadRequest, "MAX_DEPTH", fmt.Sprintf("the value is nested deeper than %d", kvsMaxDepth))
		return
	}
	now := s.now()
	var expires time.Time
	if o := req.Options; o != nil {
		if o.KeyPolicy != "" || o.ReturnValue != "" || len(o.MetadataFields) > 0 {
			forgeError(w, http.StatusBadRequest, "BAD_REQUEST", "the simulator implements options.ttl only for set (not keyPolicy, returnValue or returnMetadataFields)")
			return
		}
		if t := o.TTL; t != nil {
			unit := map[string]time.Duration{"SECONDS": time.Second, "MINUTES": time.Minute, "HOURS": time.Hour, "DAYS": 24 * time.Hour}[t.Unit]
			if unit == 0 || t.Value <= 0 {
				forgeError(w, http.StatusBadRequest, "BAD_REQUEST", "options.ttl needs a positive value and a unit of SECONDS, MINUTES, HOURS or DAYS")
				return
			}
			expires = now.Add(time.Duration(t.Value) * unit)
		}
	}
	f := s.forge
	f.mu.Lock()
	e := s.kvsEntryLocked(id, *req.Key)
	if e == nil {
		e = &kvsEntry{created: now}
		f.installs[id].storage[*req.Key] = e
	}
	e.value, e.updated, e.expires = slices.Clone(v), now, expires
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) kvsDelete(w http.ResponseWriter, id string, req kvsRequest) {
	if !validKVSKey(w, req.Key) {
		return
	}
	f := s.forge
	f.mu.Lock()
	e := s.kvsEntryLocked(id, *req.Key)
	if e != nil {
		delete(f.installs[id].storage, *req.Key)
	}
	f.mu.Unlock()
	if e == nil {
		forgeError(w, http.StatusNotFound, "KEY_NOT_FOUND", "no value is stored under this key")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) kvsQuery(w http.ResponseWriter, id string, req kvsRequest) {
	if !s.validMetadata(w, req) {
		return
	}
	limit := kvsDefaultLimit
	if req.Limit != nil {
		limit = *req.Limit
	}
	if limit < 1 || limit > kvsMaxQueryLimit {
		forgeError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("limit must be between 1 and %d", kvsMaxQueryLimit))
		return
	}
	prefix := ""
	switch len(req.Where) {
	case 0:
	case 1:
		c := req.Where[0]
		prop := c.Property
		if prop == "" {
			prop = c.Field
		}
		p, ok := "", len(c.Values) == 1
		if ok {
			p, ok = c.Values[0].(string)
		}
		if prop != "key" || c.Condition != "BEGINS_WITH" || !ok {
			forgeError(w, http.StatusBadRequest, "BAD_REQUEST", `where: the Key-Value Store supports one condition, {"property":"key","condition":"BEGINS_WITH","values":["prefix"]}`)
			return
		}
		prefix = p
	default:
		forgeError(w, http.StatusBadRequest, "BAD_REQUEST", "where: at most one condition")
		return
	}
	after := ""
	if req.After != nil && *req.After != "" {
		b, err := base64.RawURLEncoding.DecodeString(*req.After)
		if err != nil || !strings.HasPrefix(string(b), "k:") {
			forgeError(w, http.StatusBadRequest, "BAD_REQUEST", "after: not a cursor this store returned")
			return
		}
		after = string(b[2:])
	}
	f := s.forge
	f.mu.Lock()
	var keys []string
	for k := range f.installs[id].storage {
		if strings.HasPrefix(k, prefix) && k > after && s.kvsEntryLocked(id, k) != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	more := len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	data := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		e := *f.installs[id].storage[k]
		item := map[string]any{"key": k, "value": e.value}
		s.metadata(item, &e, metadataFields(req))
		data = append(data, item)
	}
	f.mu.Unlock()
	out := map[string]any{"data": data}
	if more {
		out["cursor"] = base64.RawURLEncoding.EncodeToString([]byte("k:" + keys[len(keys)-1]))
	}
	writeJSON(w, http.StatusOK, out)
}

// ForgeStorage returns a copy of an installation's Key-Value Store.
func (s *Sim) ForgeStorage(id string) map[string]json.RawMessage {
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]json.RawMessage{}
	in := f.installs[id]
	if in == nil {
		return out
	}
	for k := range in.storage {
		if e := s.kvsEntryLocked(id, k); e != nil {
			out[k] = slices.Clone(e.value)
		}
	}
	return out
}

package jirasim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Atlassian's GraphQL gateway, as much of it as a Forge remote uses: the
// offlineUserAuthToken mutation that exchanges the app system token for a
// token acting as one user ("offline user impersonation"). The request is
// parsed as GraphQL (operations, variables, aliases, inline arguments) and
// the answer holds exactly the fields selected, so a client that relies on
// a field it did not ask for fails here as it would there.

const forgeGraphQLPath = "/graphql"

const (
	gqlMaxQuery   = 64 << 10
	gqlMaxDepth   = 32
	impersonateRL = 10000.0 / 60 // per app per second: 10,000 a minute
)

func (s *Sim) handleForgeGraphQL(w http.ResponseWriter, r *http.Request) {
	f := s.forge
	f.mu.Lock()
	f.stats.GraphQLCalls++
	f.mu.Unlock()
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
		gqlFail(w, http.StatusUnauthorized, "Unauthorized: send the app system token as Authorization: Bearer")
		return
	}
	ft, in, err := s.forgeTokenOf(cred)
	if err != nil {
		gqlFail(w, http.StatusUnauthorized, "Unauthorized: "+err.Error())
		return
	}
	raw, err := readBody(r)
	if err != nil {
		gqlFail(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	var req struct {
		Query         string                     `json:"query"`
		OperationName string                     `json:"operationName"`
		Variables     map[string]json.RawMessage `json:"variables"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		gqlFail(w, http.StatusBadRequest, "the body must be a JSON object with query and variables: "+err.Error())
		return
	}
	op, err := parseGraphQL(req.Query, req.OperationName)
	if err != nil {
		gqlFail(w, http.StatusBadRequest, err.Error())
		return
	}
	if op.kind != "mutation" {
		gqlFail(w, http.StatusOK, fmt.Sprintf("the simulator serves only the offlineUserAuthToken mutation, not a %s", op.kind))
		return
	}
	data := map[string]any{}
	var order []string
	for _, fld := range op.sel {
		switch fld.name {
		case "__typename":
			data[fld.alias] = "Mutation"
		case "offlineUserAuthToken":
			// Validate before executing: a bad selection must not mint a token.
			if err := validateSel(fld.sel, "OfflineUserAuthTokenPayload"); err != nil {
				gqlFail(w, http.StatusOK, err.Error())
				return
			}
			input, err := fld.arg("input", req.Variables, op.vars)
			if err != nil {
				gqlFail(w, http.StatusOK, err.Error())
				return
			}
			payload, err := projectGQL(s.offlineUserAuthToken(ft, in, input), fld.sel, "OfflineUserAuthTokenPayload")
			if err != nil {
				gqlFail(w, http.StatusOK, err.Error())
				return
			}
			data[fld.alias] = payload
		default:
			gqlFail(w, http.StatusOK, fmt.Sprintf("Validation error: field %q is not defined on type Mutation in the simulator", fld.name))
			return
		}
		order = append(order, fld.alias)
	}
	writeRaw(w, http.StatusOK, orderedData(data, order))
}

// orderedData encodes {"data": {…}} with fields in selection order.
func orderedData(data map[string]any, order []string) []byte {
	b := []byte(`{"data":{`)
	for i, k := range order {
		if i > 0 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(data[k])
		b = append(append(append(b, kb...), ':'), vb...)
	}
	return append(b, "}}"...)
}

func gqlFail(w http.ResponseWriter, status int, msg string) {
	e := map[string]any{"message": msg}
	if status != http.StatusOK {
		e["extensions"] = map[string]any{"statusCode": status}
	}
	writeJSON(w, status, map[string]any{"errors": []map[string]any{e}, "data": nil})
}

// validateSel checks a selection against the payload's schema.
func validateSel(sel []gqlField, typ string) error {
	if len(sel) == 0 {
		return fmt.Errorf("Validation error: a selection of subfields is required on type %s", typ)
	}
	for _, f := range sel {
		if f.name == "__typename" {
			continue
		}
		ft, ok := gqlTypes[typ][f.name]
		switch {
		case !ok:
			return fmt.Errorf("Validation error: field %q is not defined on type %s", f.name, typ)
		case ft == "" && len(f.sel) > 0:
			return fmt.Errorf("Validation error: field %q of type %s is a scalar and takes no selection", f.name, typ)
		case ft != "":
			if err := validateSel(f.sel, ft); err != nil {
				return err
			}
		}
	}
	return nil
}

// offlineUserAuthToken runs the mutation and returns the full payload;
// project picks the selected fields.
func (s *Sim) offlineUserAuthToken(ft forgeToken, in *forgeInstall, input any) map[string]any {
	fail := func(status int, msg string) map[string]any {
		f := s.forge
		f.mu.Lock()
		f.stats.ImpersonationErr++
		f.mu.Unlock()
		return map[string]any{"success": false, "authToken": nil,
			"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"statusCode": status, "errorType": http.StatusText(status)}}}}
	}
	obj, ok := input.(map[string]any)
	if !ok {
		return fail(http.StatusBadRequest, "input must be an OfflineUserAuthTokenInput object with contextIds and userId")
	}
	if ft.kind != tokenSystem {
		return fail(http.StatusForbidden, "offline user impersonation needs the app system token, not a user token")
	}
	ok, _, _, _ = s.limits.take("forge-impersonation:"+in.AppID, impersonateRL, 10000, s.now())
	if !ok {
		return fail(http.StatusTooManyRequests, "rate limit exceeded: 10,000 impersonation tokens per minute per app")
	}
	ctxs, _ := obj["contextIds"].([]any)
	userID, _ := obj["userId"].(string)
	if len(ctxs) == 0 {
		return fail(http.StatusBadRequest, "contextIds is required: the installation's context ARIs")
	}
	wantA := "ari:cloud:jira:" + in.CloudID + ":workspace/" + s.workspaceID()
	wantB := "ari:cloud:jira:" + in.CloudID + ":workspace/" + in.CloudID
	for _, c := range ctxs {
		if c != wantA && c != wantB {
			return fail(http.StatusForbidden, "Could not load permissions for app user in the provided contextIds")
		}
	}
	ui, known := s.data.byAcct[userID]
	if userID == "" || !known || s.data.users[ui].Closed {
		return fail(http.StatusNotFound, "The user to impersonate does not exist or is not active")
	}
	s.forge.mu.Lock()
	service := s.forge.service[userID]
	s.forge.mu.Unlock()
	if service {
		return fail(http.StatusUnauthorized, "Service accounts cannot be impersonated")
	}
	if in.userScope == scopeNone {
		return fail(http.StatusForbidden, "The app declares no scope with allowImpersonation: true")
	}
	ttl := s.ForgeTimings().OfflineTokenTTL
	tok, _ := s.mintForgeToken(in, tokenOffline, ui, in.userScope, ttl)
	f := s.forge
	f.mu.Lock()
	f.count(&f.stats.Impersonations, userID)
	f.mu.Unlock()
	return map[string]any{"success": true, "errors": nil,
		"authToken": map[string]any{"token": tok, "ttl": int(ttl / time.Second)}}
}

// The payload's schema, for projection and validation.
var gqlTypes = map[string]map[string]string{ // type → field → type ("" scalar)
	"OfflineUserAuthTokenPayload": {"success": "", "errors": "MutationError", "authToken": "AuthToken"},
	"MutationError":               {"message": "", "extensions": "MutationErrorExtension"},
	"MutationErrorExtension":      {"statusCode": "", "errorType": ""},
	"AuthToken":                   {"token": "", "ttl": ""},
}

// project keeps the selected fields of v (an object or a list of them).
func projectGQL(v any, sel []gqlField, typ string) (any, error) {
	fields := gqlTypes[typ]
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			p, err := projectGQL(e, sel, typ)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case map[string]any:
		if len(sel) == 0 {
			return nil, fmt.Errorf("Validation error: a selection of subfields is required on type %s", typ)
		}
		out := orderedObject{}
		for _, f := range sel {
			if f.name == "__typename" {
				out = append(out, kv{f.alias, typ})
				continue
			}
			ft, ok := fields[f.name]
			if !ok {
				return nil, fmt.Errorf("Validation error: field %q is not defined on type %s", f.name, typ)
			}
			if ft == "" {
				if len(f.sel) > 0 {
					return nil, fmt.Errorf("Validation error: field %q of type %s is a scalar and takes no selection", f.name, typ)
				}
				out = append(out, kv{f.alias, x[f.name]})
				continue
			}
			p, err := projectGQL(x[f.name], f.sel, ft)
			if err != nil {
				return nil, err
			}
			out = append(out, kv{f.alias, p})
		}
		return out, nil
	}
	return v, nil
}

type kv struct {
	k string
	v any
}

// orderedObject marshals its fields in order, as GraphQL answers do.
type orderedObject []kv

func (o orderedObject) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, e := range o {
		if i > 0 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(e.k)
		vb, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}

// --- a small GraphQL parser: executable documents without fragments ---

type gqlOp struct {
	kind, name string
	vars       map[string]gqlVarDef
	sel        []gqlField
}

type gqlVarDef struct {
	typ string
	def any
}

type gqlField struct {
	alias, name string
	args        map[string]gqlValue
	sel         []gqlField
}

// gqlValue is a literal or a $variable reference.
type gqlValue struct {
	variable string
	lit      any
}

// arg resolves an argument against the request's variables.
func (f gqlField) arg(name string, vars map[string]json.RawMessage, defs map[string]gqlVarDef) (any, error) {
	v, ok := f.args[name]
	if !ok {
		return nil, fmt.Errorf("Validation error: missing required argument %q on field %q", name, f.name)
	}
	return resolveValue(v, vars, defs)
}

func resolveValue(v gqlValue, vars map[string]json.RawMessage, defs map[string]gqlVarDef) (any, error) {
	if v.variable != "" {
		d, ok := defs[v.variable]
		if !ok {
			return nil, fmt.Errorf("Validation error: variable $%s is not defined by the operation", v.variable)
		}
		raw, ok := vars[v.variable]
		if !ok || string(raw) == "null" {
			if d.def != nil {
				return d.def, nil
			}
			if strings.HasSuffix(d.typ, "!") {
				return nil, fmt.Errorf("Variable $%s of non-null type %s was not provided", v.variable, d.typ)
			}
			return nil, nil
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("Variable $%s: %v", v.variable, err)
		}
		return out, nil
	}
	switch x := v.lit.(type) {
	case []gqlValue:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := resolveValue(e, vars, defs)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]gqlValue:
		out := map[string]any{}
		for k, e := range x {
			r, err := resolveValue(e, vars, defs)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v.lit, nil
}

type gqlParser struct {
	src   string
	pos   int
	tok   string // current token: punctuator, name, or a string/number marked by kind
	kind  byte   // 'p' punctuator, 'n' name, 's' string, 'i' int, 'f' float, 0 end
	val   string // decoded string value
	depth int
}

// parseGraphQL parses an executable document and picks the operation to run.
func parseGraphQL(src, operationName string) (gqlOp, error) {
	if len(src) > gqlMaxQuery {
		return gqlOp{}, fmt.Errorf("Syntax error: the query is longer than %d bytes", gqlMaxQuery)
	}
	if !utf8.ValidString(src) {
		return gqlOp{}, errors.New("Syntax error: the query is not valid UTF-8")
	}
	p := &gqlParser{src: src}
	if err := p.next(); err != nil {
		return gqlOp{}, err
	}
	var ops []gqlOp
	for p.kind != 0 {
		op, err := p.operation()
		if err != nil {
			return gqlOp{}, err
		}
		ops = append(ops, op)
	}
	switch {
	case len(ops) == 0:
		return gqlOp{}, errors.New("Syntax error: the document has no operation")
	case operationName != "":
		for _, op := range ops {
			if op.name == operationName {
				return op, nil
			}
		}
		return gqlOp{}, fmt.Errorf("Unknown operation named %q", operationName)
	case len(ops) > 1:
		return gqlOp{}, errors.New("the document has several operations: name one with operationName")
	}
	return ops[0], nil
}

func (p *gqlParser) errf(format string, a ...any) error {
	return fmt.Errorf("Syntax error at offset %d: %s", p.pos, fmt.Sprintf(format, a...))
}

// next moves to the following token, skipping whitespace, commas and comments.
func (p *gqlParser) next() error {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			p.pos++
		case strings.HasPrefix(p.src[p.pos:], "\ufeff"):
			p.pos += len("\ufeff")
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
				p.pos++
			}
		default:
			goto token
		}
	}
	p.tok, p.kind = "", 0
	return nil
token:
	start := p.pos
	c := p.src[p.pos]
	switch {
	case strings.HasPrefix(p.src[p.pos:], "..."):
		p.pos += 3
		p.tok, p.kind = "...", 'p'
	case strings.IndexByte("!$&()[]{}:=@|", c) >= 0:
		p.pos++
		p.tok, p.kind = string(c), 'p'
	case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		for p.pos < len(p.src) && isNameChar(p.src[p.pos]) {
			p.pos++
		}
		p.tok, p.kind = p.src[start:p.pos], 'n'
	case c == '-' || c >= '0' && c <= '9':
		p.pos++
		float := false
		for p.pos < len(p.src) {
			d := p.src[p.pos]
			if d >= '0' && d <= '9' {
				p.pos++
			} else if d == '.' || d == 'e' || d == 'E' || (d == '+' || d == '-') && (p.src[p.pos-1] == 'e' || p.src[p.pos-1] == 'E') {
				float = true
				p.pos++
			} else {
				break
			}
		}
		p.tok, p.kind = p.src[start:p.pos], 'i'
		if float {
			p.kind = 'f'
		}
	case c == '"':
		return p.str()
	default:
		return p.errf("unexpected character %q", c)
	}
	return nil
}

func isNameChar(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// str reads a "string" or a """block string""".
func (p *gqlParser) str() error {
	if strings.HasPrefix(p.src[p.pos:], `"""`) {
		end := strings.Index(p.src[p.pos+3:], `"""`)
		if end < 0 {
			return p.errf("unterminated block string")
		}
		p.val = strings.ReplaceAll(p.src[p.pos+3:p.pos+3+end], `\"""`, `"""`)
		p.pos += end + 6
		p.tok, p.kind = `"""`, 's'
		return nil
	}
	var b strings.Builder
	i := p.pos + 1
	for {
		if i >= len(p.src) || p.src[i] == '\n' || p.src[i] == '\r' {
			return p.errf("unterminated string")
		}
		c := p.src[i]
		if c == '"' {
			break
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(p.src) {
			return p.errf("unterminated escape")
		}
		switch e := p.src[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if i+6 > len(p.src) {
				return p.errf("short \\u escape")
			}
			n, err := strconv.ParseUint(p.src[i+2:i+6], 16, 16)
			if err != nil {
				return p.errf("bad \\u escape")
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			return p.errf("bad escape \\%c", e)
		}
		i += 2
	}
	p.val = b.String()
	p.pos = i + 1
	p.tok, p.kind = `"`, 's'
	return nil
}

func (p *gqlParser) expect(tok string) error {
	if p.tok != tok || p.kind == 's' {
		return p.errf("expected %q, found %q", tok, p.tok)
	}
	return p.next()
}

func (p *gqlParser) name() (string, error) {
	if p.kind != 'n' {
		return "", p.errf("expected a name, found %q", p.tok)
	}
	n := p.tok
	return n, p.next()
}

func (p *gqlParser) operation() (gqlOp, error) {
	op := gqlOp{kind: "query", vars: map[string]gqlVarDef{}}
	if p.tok == "{" && p.kind == 'p' {
		sel, err := p.selectionSet()
		op.sel = sel
		return op, err
	}
	if p.kind != 'n' || (p.tok != "query" && p.tok != "mutation" && p.tok != "subscription") {
		if p.tok == "fragment" {
			return op, p.errf("fragments are not supported by the simulator")
		}
		return op, p.errf("expected an operation, found %q", p.tok)
	}
	op.kind = p.tok
	if err := p.next(); err != nil {
		return op, err
	}
	if p.kind == 'n' {
		op.name = p.tok
		if err := p.next(); err != nil {
			return op, err
		}
	}
	if p.tok == "(" && p.kind == 'p' {
		if err := p.next(); err != nil {
			return op, err
		}
		for !(p.tok == ")" && p.kind == 'p') {
			if err := p.expect("$"); err != nil {
				return op, err
			}
			n, err := p.name()
			if err != nil {
				return op, err
			}
			if err := p.expect(":"); err != nil {
				return op, err
			}
			typ, err := p.typeRef()
			if err != nil {
				return op, err
			}
			d := gqlVarDef{typ: typ}
			if p.tok == "=" && p.kind == 'p' {
				if err := p.next(); err != nil {
					return op, err
				}
				v, err := p.value(true)
				if err != nil {
					return op, err
				}
				d.def, _ = resolveValue(v, nil, nil)
			}
			if _, dup := op.vars[n]; dup {
				return op, p.errf("variable $%s is defined twice", n)
			}
			op.vars[n] = d
		}
		if err := p.next(); err != nil {
			return op, err
		}
	}
	if err := p.directives(); err != nil {
		return op, err
	}
	sel, err := p.selectionSet()
	op.sel = sel
	return op, err
}

func (p *gqlParser) typeRef() (string, error) {
	var t string
	if p.tok == "[" && p.kind == 'p' {
		if err := p.next(); err != nil {
			return "", err
		}
		inner, err := p.typeRef()
		if err != nil {
			return "", err
		}
		if err := p.expect("]"); err != nil {
			return "", err
		}
		t = "[" + inner + "]"
	} else {
		n, err := p.name()
		if err != nil {
			return "", err
		}
		t = n
	}
	if p.tok == "!" && p.kind == 'p' {
		t += "!"
		return t, p.next()
	}
	return t, nil
}

func (p *gqlParser) directives() error {
	for p.tok == "@" && p.kind == 'p' {
		if err := p.next(); err != nil {
			return err
		}
		if _, err := p.name(); err != nil {
			return err
		}
		if p.tok == "(" && p.kind == 'p' {
			if _, err := p.arguments(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *gqlParser) selectionSet() ([]gqlField, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > gqlMaxDepth {
		return nil, p.errf("selections nested deeper than %d", gqlMaxDepth)
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	var out []gqlField
	for !(p.tok == "}" && p.kind == 'p') {
		if p.kind == 0 {
			return nil, p.errf("unterminated selection set")
		}
		if p.tok == "..." && p.kind == 'p' {
			return nil, p.errf("fragments are not supported by the simulator")
		}
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		f := gqlField{alias: n, name: n}
		if p.tok == ":" && p.kind == 'p' {
			if err := p.next(); err != nil {
				return nil, err
			}
			if f.name, err = p.name(); err != nil {
				return nil, err
			}
		}
		if p.tok == "(" && p.kind == 'p' {
			if f.args, err = p.arguments(); err != nil {
				return nil, err
			}
		}
		if err := p.directives(); err != nil {
			return nil, err
		}
		if p.tok == "{" && p.kind == 'p' {
			if f.sel, err = p.selectionSet(); err != nil {
				return nil, err
			}
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, p.errf("empty selection set")
	}
	return out, p.next()
}

func (p *gqlParser) arguments() (map[string]gqlValue, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	args := map[string]gqlValue{}
	for !(p.tok == ")" && p.kind == 'p') {
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		v, err := p.value(false)
		if err != nil {
			return nil, err
		}
		args[n] = v
	}
	return args, p.next()
}

// value parses a literal (constant: no variables allowed).
func (p *gqlParser) value(constant bool) (gqlValue, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > gqlMaxDepth {
		return gqlValue{}, p.errf("values nested deeper than %d", gqlMaxDepth)
	}
	switch {
	case p.tok == "$" && p.kind == 'p':
		if constant {
			return gqlValue{}, p.errf("a variable is not allowed here")
		}
		if err := p.next(); err != nil {
			return gqlValue{}, err
		}
		n, err := p.name()
		return gqlValue{variable: n}, err
	case p.kind == 's':
		v := p.val
		return gqlValue{lit: v}, p.next()
	case p.kind == 'i':
		n, err := strconv.ParseInt(p.tok, 10, 64)
		if err != nil {
			return gqlValue{}, p.errf("bad integer %q", p.tok)
		}
		return gqlValue{lit: float64(n)}, p.next()
	case p.kind == 'f':
		f, err := strconv.ParseFloat(p.tok, 64)
		if err != nil || math.IsInf(f, 0) {
			return gqlValue{}, p.errf("bad float %q", p.tok)
		}
		return gqlValue{lit: f}, p.next()
	case p.kind == 'n':
		var lit any
		switch p.tok {
		case "true":
			lit = true
		case "false":
			lit = false
		case "null":
			lit = nil
		default:
			lit = p.tok // enum value
		}
		return gqlValue{lit: lit}, p.next()
	case p.tok == "[" && p.kind == 'p':
		if err := p.next(); err != nil {
			return gqlValue{}, err
		}
		list := []gqlValue{}
		for !(p.tok == "]" && p.kind == 'p') {
			if p.kind == 0 {
				return gqlValue{}, p.errf("unterminated list")
			}
			v, err := p.value(constant)
			if err != nil {
				return gqlValue{}, err
			}
			list = append(list, v)
		}
		return gqlValue{lit: list}, p.next()
	case p.tok == "{" && p.kind == 'p':
		if err := p.next(); err != nil {
			return gqlValue{}, err
		}
		obj := map[string]gqlValue{}
		for !(p.tok == "}" && p.kind == 'p') {
			n, err := p.name()
			if err != nil {
				return gqlValue{}, err
			}
			if err := p.expect(":"); err != nil {
				return gqlValue{}, err
			}
			v, err := p.value(constant)
			if err != nil {
				return gqlValue{}, err
			}
			obj[n] = v
		}
		return gqlValue{lit: obj}, p.next()
	}
	return gqlValue{}, p.errf("expected a value, found %q", p.tok)
}

package flink

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/rest"
)

// openapi.json describes the REST API. These tests keep it true:
//
//   - TestOpenAPIDocument: the document has the shape of OpenAPI 3 (version,
//     info, paths, operations, responses, path parameters, components) and
//     every $ref resolves.
//   - TestOpenAPIRoutes: the routes registered in the package's source (every
//     Handle and HandleFunc call on a ServeMux, found with go/parser) are
//     exactly the documented operations.
//   - TestOpenAPISchemas: every schema matches its Go type by reflection
//     (properties from json tags, required from omitempty, property types and
//     references), and every exported REST body type is documented.
//   - TestOpenAPIServed: a real server answers each documented operation
//     through its route, with a documented status code and a body valid
//     against the documented schema, for unknown ids and for a running job.

// openAPIGoTypes maps each schema of openapi.json to the Go type it
// describes. A schema for a named string type may be referenced by fields
// of that type; ExecutionState and CheckpointStatus are enumerations of
// plain string fields.
var openAPIGoTypes = map[string]reflect.Type{
	"ErrorBody":           reflect.TypeFor[rest.ErrorBody](),
	"StuckTask":           reflect.TypeFor[rest.StuckTask](),
	"Overview":            reflect.TypeFor[rest.Overview](),
	"DashboardConfig":     reflect.TypeFor[rest.DashboardConfig](),
	"JobIDs":              reflect.TypeFor[rest.JobIDs](),
	"JobIDWithStatus":     reflect.TypeFor[rest.JobIDWithStatus](),
	"JobsOverview":        reflect.TypeFor[rest.JobsOverview](),
	"JobOverview":         reflect.TypeFor[rest.JobOverview](),
	"JobDetails":          reflect.TypeFor[rest.JobDetails](),
	"Vertex":              reflect.TypeFor[rest.Vertex](),
	"VertexMetrics":       reflect.TypeFor[rest.VertexMetrics](),
	"OperatorInfo":        reflect.TypeFor[rest.OperatorInfo](),
	"JobExceptions":       reflect.TypeFor[rest.JobExceptions](),
	"SubmitRequest":       reflect.TypeFor[rest.SubmitRequest](),
	"SubmitResponse":      reflect.TypeFor[rest.SubmitResponse](),
	"TaskManagers":        reflect.TypeFor[rest.TaskManagers](),
	"TaskManager":         reflect.TypeFor[rest.TaskManager](),
	"TaskManagerMetrics":  reflect.TypeFor[rest.TaskManagerMetrics](),
	"GarbageCollector":    reflect.TypeFor[rest.GarbageCollector](),
	"Checkpoints":         reflect.TypeFor[rest.Checkpoints](),
	"CheckpointCounts":    reflect.TypeFor[rest.CheckpointCounts](),
	"CheckpointSummary":   reflect.TypeFor[rest.CheckpointSummary](),
	"MinMaxAvg":           reflect.TypeFor[rest.MinMaxAvg](),
	"LatestCheckpoints":   reflect.TypeFor[rest.LatestCheckpoints](),
	"RestoredCheckpoint":  reflect.TypeFor[rest.RestoredCheckpoint](),
	"CheckpointDetails":   reflect.TypeFor[rest.CheckpointDetails](),
	"TriggerResponse":     reflect.TypeFor[rest.TriggerResponse](),
	"SavepointStatus":     reflect.TypeFor[rest.SavepointStatus](),
	"QueueStatus":         reflect.TypeFor[rest.QueueStatus](),
	"SavepointOperation":  reflect.TypeFor[rest.SavepointOperation](),
	"FailureCause":        reflect.TypeFor[rest.FailureCause](),
	"JobPlan":             reflect.TypeFor[rest.JobPlan](),
	"Plan":                reflect.TypeFor[rest.Plan](),
	"PlanNode":            reflect.TypeFor[rest.PlanNode](),
	"PlanInput":           reflect.TypeFor[rest.PlanInput](),
	"BackPressure":        reflect.TypeFor[rest.BackPressure](),
	"Metric":              reflect.TypeFor[rest.Metric](),
	"SubtaskBackPressure": reflect.TypeFor[rest.SubtaskBackPressure](),
	"JobID":               reflect.TypeFor[rest.JobID](),
	"JobStatus":           reflect.TypeFor[rest.JobStatus](),
	"ExecutionState":      reflect.TypeFor[string](),
	"CheckpointStatus":    reflect.TypeFor[string](),
}

// openAPISourceStructs maps the schemas of request bodies that the server
// decodes into an unnamed struct to where that struct is declared: the
// file, the function and the variable. Their properties are checked
// against the struct's json tags in the source.
var openAPISourceStructs = map[string][3]string{
	"SavepointRequest": {"rest_checkpoints.go", "postSavepoint", "req"},
}

// openAPIEnums are the values of the enumeration schemas.
func openAPIEnums() map[string][]string {
	jobs := make([]string, len(allJobStatuses))
	for i, s := range allJobStatuses {
		jobs[i] = string(s)
	}
	return map[string][]string{
		"JobStatus":      jobs,
		"ExecutionState": stateNames[:],
		"CheckpointStatus": {checkpoint.StatusInProgress.String(), checkpoint.StatusCompleted.String(),
			checkpoint.StatusFailed.String()},
	}
}

// oaDoc is the part of an OpenAPI 3 document that the tests read.
type oaDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas    map[string]*oaSchema `json:"schemas"`
		Parameters map[string]*oaParam  `json:"parameters"`
	} `json:"components"`

	ops []oaOp // every operation, by path and method
}

type oaOp struct {
	method, path string
	*oaOperation
}

func (o oaOp) String() string { return o.method + " " + o.path }

type oaOperation struct {
	OperationID string     `json:"operationId"`
	Parameters  []*oaParam `json:"parameters"`
	RequestBody *struct {
		Required bool                  `json:"required"`
		Content  map[string]*oaContent `json:"content"`
	} `json:"requestBody"`
	Responses map[string]*struct {
		Description string                `json:"description"`
		Content     map[string]*oaContent `json:"content"`
	} `json:"responses"`
}

type oaContent struct {
	Schema *oaSchema `json:"schema"`
}

type oaParam struct {
	Ref      string    `json:"$ref"`
	Name     string    `json:"name"`
	In       string    `json:"in"`
	Required bool      `json:"required"`
	Schema   *oaSchema `json:"schema"`
}

// oaSchema is the subset of the Schema Object the document uses.
type oaSchema struct {
	Ref                  string               `json:"$ref"`
	Type                 string               `json:"type"`
	Format               string               `json:"format"`
	Pattern              string               `json:"pattern"`
	Enum                 []string             `json:"enum"`
	Nullable             bool                 `json:"nullable"`
	AllOf                []*oaSchema          `json:"allOf"`
	Properties           map[string]*oaSchema `json:"properties"`
	Required             []string             `json:"required"`
	Items                *oaSchema            `json:"items"`
	AdditionalProperties json.RawMessage      `json:"additionalProperties"`
	Minimum              *float64             `json:"minimum"`
}

// additional returns the schema of additionalProperties, and whether they
// are allowed at all.
func (s *oaSchema) additional() (*oaSchema, bool, error) {
	raw := strings.TrimSpace(string(s.AdditionalProperties))
	switch raw {
	case "", "true":
		return nil, true, nil
	case "false":
		return nil, false, nil
	}
	var a oaSchema
	if err := json.Unmarshal(s.AdditionalProperties, &a); err != nil {
		return nil, false, fmt.Errorf("additionalProperties: %w", err)
	}
	return &a, true, nil
}

var oaMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true,
	"head": true, "patch": true, "trace": true}

// loadOpenAPI reads and decodes openapi.json.
func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	var doc oaDoc
	require.NoError(t, json.Unmarshal(raw, &doc), "openapi.json is not valid JSON")
	for _, p := range slices.Sorted(maps.Keys(doc.Paths)) {
		for _, m := range slices.Sorted(maps.Keys(doc.Paths[p])) {
			if !oaMethods[m] {
				continue
			}
			var op oaOperation
			require.NoError(t, json.Unmarshal(doc.Paths[p][m], &op), "%s %s", m, p)
			doc.ops = append(doc.ops, oaOp{method: strings.ToUpper(m), path: p, oaOperation: &op})
		}
	}
	return &doc
}

// param resolves a parameter reference.
func (d *oaDoc) param(p *oaParam) *oaParam {
	if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
		if q := d.Components.Parameters[name]; q != nil {
			return q
		}
	}
	return p
}

// schema resolves a schema reference and a single allOf wrapper; nullable
// is true if the wrapper or the schema allows null.
func (d *oaDoc) schema(s *oaSchema) (_ *oaSchema, nullable bool) {
	for s != nil {
		nullable = nullable || s.Nullable
		switch {
		case s.Ref != "":
			s = d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		case len(s.AllOf) == 1 && s.Type == "" && len(s.Properties) == 0:
			s = s.AllOf[0]
		default:
			return s, nullable
		}
	}
	return nil, nullable
}

var oaPathParam = regexp.MustCompile(`\{([^{}/]+)\}`)

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	assert.Regexp(t, `^3\.\d+\.\d+$`, doc.OpenAPI, "the openapi field names an OpenAPI 3 version")
	assert.NotEmpty(t, doc.Info.Title, "info.title")
	assert.NotEmpty(t, doc.Info.Version, "info.version")
	require.NotEmpty(t, doc.Paths, "paths")
	require.NotEmpty(t, doc.Components.Schemas, "components.schemas")

	pathItemFields := map[string]bool{"summary": true, "description": true, "servers": true, "parameters": true}
	for p, item := range doc.Paths {
		assert.True(t, strings.HasPrefix(p, "/"), "path %q starts with /", p)
		for k := range item {
			assert.True(t, oaMethods[k] || pathItemFields[k], "path %q: %q is neither a method nor a path item field", p, k)
		}
	}
	ids := map[string]string{}
	for _, op := range doc.ops {
		if assert.NotEmpty(t, op.OperationID, "%s: operationId", op) {
			assert.NotContains(t, ids, op.OperationID, "%s: operationId %q also names %s", op, op.OperationID, ids[op.OperationID])
			ids[op.OperationID] = op.String()
		}
		assert.NotEmpty(t, op.Responses, "%s: responses", op)
		for code, r := range op.Responses {
			assert.Regexp(t, `^(default|[1-5][0-9][0-9])$`, code, "%s: response code", op)
			if assert.NotNil(t, r, "%s %s", op, code) {
				assert.NotEmpty(t, r.Description, "%s %s: a response needs a description", op, code)
				for media, c := range r.Content {
					assert.True(t, c != nil && c.Schema != nil, "%s %s %s: schema", op, code, media)
				}
			}
		}
		if op.RequestBody != nil {
			assert.NotEmpty(t, op.RequestBody.Content, "%s: requestBody.content", op)
		}
		// Path parameters: exactly those of the template, each required.
		var want, got []string
		for _, m := range oaPathParam.FindAllStringSubmatch(op.path, -1) {
			want = append(want, m[1])
		}
		for _, p := range op.Parameters {
			p = doc.param(p)
			assert.Contains(t, []string{"path", "query", "header", "cookie"}, p.In, "%s: parameter %q", op, p.Name)
			assert.NotNil(t, p.Schema, "%s: parameter %q has a schema", op, p.Name)
			if p.In == "path" {
				got = append(got, p.Name)
				assert.True(t, p.Required, "%s: path parameter %q must be required", op, p.Name)
			}
		}
		assert.ElementsMatch(t, want, got, "%s: path parameters", op)
	}

	// Every $ref resolves within the document.
	raw, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	var tree any
	require.NoError(t, json.Unmarshal(raw, &tree))
	refs := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				refs++
				_, err := oaPointer(tree, ref)
				assert.NoError(t, err, "$ref %q", ref)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(tree)
	assert.Greater(t, refs, 0)
}

// oaPointer resolves a local reference ("#/a/b") in the decoded document.
func oaPointer(tree any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	v := tree
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok || m[tok] == nil {
			return nil, fmt.Errorf("no %q", tok)
		}
		v = m[tok]
	}
	return v, nil
}

// oaRoute is one route registered in the source.
type oaRoute struct {
	method, path string
	pos          string // file:line
}

// serverRoutes finds every route registered in the package's non-test Go
// files: each call X.Handle(pattern, ...) or X.HandleFunc(pattern, ...)
// where X is not an imported package, such as a *http.ServeMux. A pattern
// that is not a string literal, a pattern without a method or with a host,
// and a route on http.DefaultServeMux are errors: the tests could not tell
// the route.
func serverRoutes(t *testing.T) []oaRoute {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	var routes []oaRoute
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		imports := map[string]string{} // local name -> path
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			local := p[strings.LastIndex(p, "/")+1:]
			if imp.Name != nil {
				local = imp.Name.Name
			}
			imports[local] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			pos := fset.Position(call.Pos()).String()
			if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] != "" {
				assert.NotEqual(t, "net/http", imports[x.Name], "%s: a route on http.DefaultServeMux; register it on the REST server's mux", pos)
				return true // a package's function, such as rpc.Handle
			}
			if !assert.NotEmpty(t, call.Args, "%s: %s without arguments", pos, sel.Sel.Name) {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !assert.True(t, ok && lit.Kind == token.STRING, "%s: the pattern of %s must be a string literal, for openapi_test.go to find the route", pos, sel.Sel.Name) {
				return true
			}
			pattern, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			method, path, ok := strings.Cut(pattern, " ")
			if !assert.True(t, ok && method != "" && strings.HasPrefix(path, "/"), "%s: pattern %q: want \"METHOD /path\"", pos, pattern) {
				return true
			}
			routes = append(routes, oaRoute{method: method, path: path, pos: pos})
			return true
		})
	}
	return routes
}

// documentedPath returns the OpenAPI path of a ServeMux pattern's path:
// "{$}" is dropped and "{name...}" becomes "{name}". A path ending in "/"
// (other than "/") matches a subtree; then subtree is true and the
// documented path is the prefix followed by one path parameter.
func documentedPath(pattern string) (path string, subtree bool) {
	if p, ok := strings.CutSuffix(pattern, "{$}"); ok {
		return p, false
	}
	path = strings.ReplaceAll(pattern, "...}", "}")
	return path, path != "/" && strings.HasSuffix(path, "/")
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	routes := serverRoutes(t)
	// Guard against a search that finds nothing: the core routes exist.
	var found []string
	for _, r := range routes {
		found = append(found, r.method+" "+r.path)
	}
	require.Subset(t, found, []string{"GET /overview", "POST /jobs", "GET /jobs/{jobid}", "GET /metrics"},
		"the source scan finds the REST server's routes")

	documented := map[string]bool{}
	for _, op := range doc.ops {
		documented[op.String()] = false
	}
	for _, r := range routes {
		path, subtree := documentedPath(r.path)
		if !subtree {
			key := r.method + " " + path
			if _, ok := documented[key]; assert.True(t, ok, "%s: route %q is not documented in openapi.json (want path %q, method %s)",
				r.pos, r.method+" "+r.path, path, strings.ToLower(r.method)) {
				documented[key] = true
			}
			continue
		}
		// A subtree: documented as the prefix and one path parameter.
		var keys []string
		for _, op := range doc.ops {
			rest, ok := strings.CutPrefix(op.path, path)
			if ok && op.method == r.method && oaPathParam.FindString(rest) == rest && rest != "" {
				keys = append(keys, op.String())
			}
		}
		if assert.Len(t, keys, 1, "%s: subtree route %q: want one documented path %q{param}", r.pos, r.method+" "+r.path, path) {
			documented[keys[0]] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(documented)) {
		assert.True(t, documented[key], "openapi.json documents %s, which the server does not route", key)
	}
}

func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	schemas := doc.Components.Schemas
	for name := range schemas {
		_, typed := openAPIGoTypes[name]
		_, src := openAPISourceStructs[name]
		assert.True(t, typed || src, "schema %q has no Go type: add it to openAPIGoTypes in openapi_test.go", name)
	}
	for name := range openAPIGoTypes {
		assert.Contains(t, schemas, name, "openAPIGoTypes names schema %q, which openapi.json lacks", name)
	}
	// Every exported struct type of package rest is a body of the API and
	// must be documented, but the client, its options and its error.
	for _, name := range restStructTypes(t) {
		if name == "Client" || name == "ClientOption" || name == "APIError" {
			continue
		}
		_, ok := openAPIGoTypes[name]
		assert.True(t, ok, "type %s is not documented: add a schema to openapi.json and map it in openAPIGoTypes", name)
	}
	for name, typ := range openAPIGoTypes {
		s := schemas[name]
		if s == nil {
			continue
		}
		if typ.Kind() == reflect.Struct {
			oaCheckStruct(t, doc, name, s, typ)
		} else {
			oaCheckType(t, doc, name, s, typ, false)
		}
	}
	for name, want := range openAPIEnums() {
		if s := schemas[name]; assert.NotNil(t, s, name) {
			assert.ElementsMatch(t, want, s.Enum, "schema %s: enum", name)
		}
	}
	for name, where := range openAPISourceStructs {
		s := schemas[name]
		if !assert.NotNil(t, s, name) {
			continue
		}
		tags := unnamedStructTags(t, where[0], where[1], where[2])
		assert.ElementsMatch(t, tags, slices.Collect(maps.Keys(s.Properties)),
			"schema %s: properties; want the json tags of %s in %s of %s", name, where[2], where[1], where[0])
	}
}

// restStructTypes returns the exported struct types of package rest.
func restStructTypes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("rest", "*.go"))
	require.NoError(t, err)
	fset := token.NewFileSet()
	var names []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					if _, ok := ts.Type.(*ast.StructType); ok && ts.Name.IsExported() {
						names = append(names, ts.Name.Name)
					}
				}
			}
		}
	}
	require.NotEmpty(t, names)
	return names
}

// unnamedStructTags returns the json names of the fields of the unnamed
// struct type of variable v in function fn of file.
func unnamedStructTags(t *testing.T, file, fn, v string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	require.NoError(t, err)
	var st *ast.StructType
	ast.Inspect(f, func(n ast.Node) bool {
		if fd, ok := n.(*ast.FuncDecl); ok && fd.Name.Name != fn {
			return false
		}
		if vs, ok := n.(*ast.ValueSpec); ok && st == nil {
			for _, id := range vs.Names {
				if s, ok := vs.Type.(*ast.StructType); ok && id.Name == v {
					st = s
				}
			}
		}
		return true
	})
	require.NotNil(t, st, "no variable %s of an unnamed struct type in %s of %s", v, fn, file)
	var tags []string
	for _, fl := range st.Fields.List {
		tag := ""
		if fl.Tag != nil {
			u, err := strconv.Unquote(fl.Tag.Value)
			require.NoError(t, err)
			tag = reflect.StructTag(u).Get("json")
		}
		name, _, _ := strings.Cut(tag, ",")
		for _, id := range fl.Names {
			switch {
			case name == "-" || !id.IsExported():
			case name != "":
				tags = append(tags, name)
			default:
				tags = append(tags, id.Name)
			}
		}
	}
	return tags
}

// oaField is a struct field as encoding/json sees it.
type oaField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

func oaFields(t *testing.T, typ reflect.Type) []oaField {
	var out []oaField
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		require.False(t, f.Anonymous && name == "", "%s.%s: embedded fields are not supported by openapi_test.go", typ, f.Name)
		if name == "" {
			name = f.Name
		}
		out = append(out, oaField{name: name, typ: f.Type, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty")})
	}
	return out
}

// oaCheckStruct checks an object schema against a struct type: the same
// properties, required exactly the fields without omitempty, no other
// properties, and each property's type.
func oaCheckStruct(t *testing.T, doc *oaDoc, name string, s *oaSchema, typ reflect.Type) {
	t.Helper()
	assert.Equal(t, "object", s.Type, "schema %s: type", name)
	_, extra, err := s.additional()
	assert.NoError(t, err, "schema %s", name)
	assert.False(t, extra, "schema %s: additionalProperties must be false, as %s has no other fields", name, typ)
	fields := oaFields(t, typ)
	var want, required []string
	for _, f := range fields {
		want = append(want, f.name)
		if !f.omitempty {
			required = append(required, f.name)
		}
	}
	assert.ElementsMatch(t, want, slices.Collect(maps.Keys(s.Properties)), "schema %s: properties; want the json names of %s's fields", name, typ)
	assert.ElementsMatch(t, required, s.Required, "schema %s: required; want the fields of %s without omitempty", name, typ)
	for _, f := range fields {
		if p := s.Properties[f.name]; p != nil {
			oaCheckType(t, doc, name+"."+f.name, p, f.typ, f.omitempty)
		}
	}
}

// oaCheckType checks that schema s describes values of Go type typ: a
// reference must name the schema of typ itself, a pointer is a reference
// and nullable unless omitempty leaves it out, and other types map to
// their JSON types.
func oaCheckType(t *testing.T, doc *oaDoc, at string, s *oaSchema, typ reflect.Type, omitempty bool) {
	t.Helper()
	inner, nullable := s, s.Nullable
	if len(s.AllOf) > 0 {
		if !assert.Len(t, s.AllOf, 1, "%s: allOf wraps one reference", at) {
			return
		}
		inner = s.AllOf[0]
		nullable = nullable || inner.Nullable
	}
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
		assert.NotEmpty(t, inner.Ref, "%s: a pointer field is a reference to the schema of %s", at, typ)
		assert.True(t, nullable || omitempty, "%s: a pointer without omitempty may be null: wrap the reference in allOf with nullable", at)
	} else {
		assert.False(t, nullable, "%s: %s is never null", at, typ)
	}
	if inner.Ref != "" {
		name, ok := strings.CutPrefix(inner.Ref, "#/components/schemas/")
		if assert.True(t, ok, "%s: $ref %q", at, inner.Ref) {
			assert.Equal(t, typ, openAPIGoTypes[name], "%s: references schema %s, which describes another Go type", at, name)
		}
		return
	}
	switch typ.Kind() {
	case reflect.String:
		assert.Equal(t, "string", inner.Type, "%s: type of %s", at, typ)
	case reflect.Bool:
		assert.Equal(t, "boolean", inner.Type, "%s: type of %s", at, typ)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		assert.Equal(t, "integer", inner.Type, "%s: type of %s", at, typ)
		if typ.Size() == 8 && typ.Kind() != reflect.Int && typ.Kind() != reflect.Uint {
			assert.Equal(t, "int64", inner.Format, "%s: format of %s", at, typ)
		}
		if k := typ.Kind(); k >= reflect.Uint && k <= reflect.Uint64 {
			assert.True(t, inner.Minimum != nil && *inner.Minimum == 0, "%s: %s is at least 0", at, typ)
		}
	case reflect.Float32, reflect.Float64:
		assert.Equal(t, "number", inner.Type, "%s: type of %s", at, typ)
	case reflect.Slice:
		if assert.Equal(t, "array", inner.Type, "%s: type of %s", at, typ) && assert.NotNil(t, inner.Items, "%s: items", at) {
			oaCheckType(t, doc, at+"[]", inner.Items, typ.Elem(), false)
		}
	case reflect.Map:
		assert.Equal(t, reflect.String, typ.Key().Kind(), "%s: map keys", at)
		assert.Equal(t, "object", inner.Type, "%s: type of %s", at, typ)
		a, _, err := inner.additional()
		if assert.NoError(t, err, at) && assert.NotNil(t, a, "%s: additionalProperties describes the values of %s", at, typ) {
			oaCheckType(t, doc, at+"{}", a, typ.Elem(), false)
		}
	case reflect.Struct:
		t.Errorf("%s: a %s is a reference to its schema", at, typ)
	default:
		t.Errorf("%s: %s has no JSON type in openapi_test.go", at, typ)
	}
}

// oaRegistry holds the job TestOpenAPIServed runs: an unbounded keyed sum
// that takes savepoints (no periodic checkpoints).
func oaRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister("openapi", func(env *Env, args []string) error {
		nums := Generate(env, -1, func(i int64) (int64, error) {
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
			return i % 10, nil
		}).UID("numbers")
		sums := Reduce(KeyBy(nums, func(v int64) int64 { return v }), func(a, b int64) (int64, error) { return a + b, nil }).UID("sums")
		SinkTo(sums, "discard", SinkFunc(func(int64) error { return nil }))
		return nil
	})
	return reg
}

// oaServer calls a real REST server and checks each answer against the
// document.
type oaServer struct {
	t       *testing.T
	doc     *oaDoc
	handler http.Handler
	// answered records the operations answered, with their status codes.
	answered map[string][]int
}

// operation finds the documented operation of a concrete path: the
// template with the most literal segments in common.
func (s *oaServer) operation(method, path string) *oaOp {
	segs := strings.Split(path, "/")
	var best *oaOp
	bestScore := -1
	for i, op := range s.doc.ops {
		tsegs := strings.Split(op.path, "/")
		if op.method != method || len(tsegs) != len(segs) {
			continue
		}
		score := 0
		for j := range tsegs {
			switch {
			case tsegs[j] == segs[j]:
				score++
			case oaPathParam.FindString(tsegs[j]) == tsegs[j] && segs[j] != "":
			default:
				score = -1
			}
			if score < 0 {
				break
			}
		}
		if score > bestScore {
			best, bestScore = &s.doc.ops[i], score
		}
	}
	return best
}

// call sends a request and checks that the answer has a documented status
// code and content type and, for JSON, a body valid against the schema.
// It returns the status and the decoded body.
func (s *oaServer) call(method, path, body string) (int, any) {
	t := s.t
	t.Helper()
	target := path
	path, _, _ = strings.Cut(path, "?")
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok {
		path = "/" + rest // the servers' /v1 prefix
	}
	op := s.operation(method, path)
	require.NotNil(t, op, "%s %s: no documented operation", method, path)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, httptest.NewRequest(method, target, rd))
	raw := rec.Body.Bytes()
	var v any
	if json.Unmarshal(raw, &v) == nil {
		if m, ok := v.(map[string]any); ok && (rec.Code == http.StatusNotFound || rec.Code == http.StatusMethodNotAllowed) {
			if errs, ok := m["errors"].([]any); ok && len(errs) == 1 {
				msg, _ := errs[0].(string)
				require.False(t, strings.HasPrefix(msg, "Not found: ") || strings.Contains(msg, "is not allowed on"),
					"%s %s (documented as %s): the server has no such route: %s", method, target, op, msg)
			}
		}
	}
	s.answered[op.String()] = append(s.answered[op.String()], rec.Code)
	resp := op.Responses[strconv.Itoa(rec.Code)]
	require.NotNil(t, resp, "%s %s: status %d is not documented for %s: %s", method, target, rec.Code, op, raw)
	media, _, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	require.NoError(t, err, "%s %s: Content-Type", method, target)
	c := resp.Content[media]
	require.NotNil(t, c, "%s %s: content type %s is not documented for status %d of %s", method, target, media, rec.Code, op)
	if media == "application/json" {
		require.NoError(t, json.Unmarshal(raw, &v), "%s %s: %s", method, target, raw)
		assert.NoError(t, s.validate(v, c.Schema, "body"), "%s %s: status %d: %s", method, target, rec.Code, raw)
	}
	return rec.Code, v
}

// validate checks a decoded JSON value against a schema.
func (s *oaServer) validate(v any, sch *oaSchema, at string) error {
	sch, nullable := s.doc.schema(sch)
	if sch == nil {
		return fmt.Errorf("%s: unresolved schema", at)
	}
	if v == nil {
		if nullable {
			return nil
		}
		return fmt.Errorf("%s: null", at)
	}
	if len(sch.Enum) > 0 && !slices.Contains(sch.Enum, fmt.Sprint(v)) {
		return fmt.Errorf("%s: %v is not one of %q", at, v, sch.Enum)
	}
	switch sch.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", at, v)
		}
		for _, r := range sch.Required {
			if _, ok := m[r]; !ok {
				return fmt.Errorf("%s: required property %q is missing", at, r)
			}
		}
		extra, allowed, err := sch.additional()
		if err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			p := sch.Properties[k]
			switch {
			case p != nil:
			case extra != nil:
				p = extra
			case allowed:
				continue
			default:
				return fmt.Errorf("%s: undocumented property %q", at, k)
			}
			if err := s.validate(m[k], p, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", at, v)
		}
		for i, e := range a {
			if err := s.validate(e, sch.Items, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %T", at, v)
		}
		if sch.Pattern != "" && !regexp.MustCompile(sch.Pattern).MatchString(str) {
			return fmt.Errorf("%s: %q does not match %s", at, str, sch.Pattern)
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("%s: want a number, got %T", at, v)
		}
		if sch.Type == "integer" && f != math.Trunc(f) {
			return fmt.Errorf("%s: %v is not an integer", at, f)
		}
		if sch.Minimum != nil && f < *sch.Minimum {
			return fmt.Errorf("%s: %v is below the minimum %v", at, f, *sch.Minimum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %T", at, v)
		}
	default:
		return fmt.Errorf("%s: schema type %q", at, sch.Type)
	}
	return nil
}

// concrete fills in a path template's parameters.
func concrete(template string, values map[string]string) string {
	return oaPathParam.ReplaceAllStringFunc(template, func(p string) string {
		if v, ok := values[p[1:len(p)-1]]; ok {
			return v
		}
		return "x"
	})
}

func TestOpenAPIServed(t *testing.T) {
	doc := loadOpenAPI(t)
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 1, 2, oaRegistry()
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	rs := NewRESTServer(c)
	srv := &oaServer{t: t, doc: doc, handler: rs.Handler(), answered: map[string][]int{}}

	// Every operation with ids nobody knows: an error of the route, not of
	// the mux, and documented.
	fake := map[string]string{"jobid": strings.Repeat("0", 32), "vertexid": "0", "checkpointid": "1",
		"triggerid": "nope", "asset": "app.js", "taskmanagerid": "nobody"}
	for _, op := range doc.ops {
		body := ""
		if op.RequestBody != nil {
			body = "{}"
		}
		srv.call(op.method, concrete(op.path, fake), body)
	}
	srv.call(http.MethodGet, "/jobs/xyz", "")
	srv.call(http.MethodGet, "/web/nope.js", "")
	srv.call(http.MethodPost, "/jobs", `{"name": "nope"}`)

	// Metrics once exported (package metrics/prometheus; here a stand-in,
	// as the root package's tests cannot import it).
	rs.HandleMetrics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, "flink_jobmanager_numRunningJobs 1\n")
	}))

	// A running job, a savepoint, a stop with a savepoint.
	status, body := srv.call(http.MethodPost, "/jobs", `{"name": "openapi", "parallelism": 2}`)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	id := body.(map[string]any)["jobid"].(string)
	real := map[string]string{"jobid": id, "vertexid": "0", "checkpointid": "1", "triggerid": "nope", "asset": "style.css",
		"taskmanagerid": "taskmanager-0"}
	require.Eventually(t, func() bool {
		_, d := srv.call(http.MethodGet, "/jobs/"+id, "")
		counts := d.(map[string]any)["status-counts"].(map[string]any)
		var total float64
		for _, n := range counts {
			total += n.(float64)
		}
		return total > 0 && counts["RUNNING"] == total
	}, 30*time.Second, 5*time.Millisecond)
	for _, op := range doc.ops {
		if op.method == http.MethodGet {
			srv.call(op.method, concrete(op.path, real), "")
		}
	}
	awaitSavepoint := func(trigger string) string {
		var location string
		require.Eventually(t, func() bool {
			status, body := srv.call(http.MethodGet, "/jobs/"+id+"/savepoints/"+trigger, "")
			if status != http.StatusOK || body.(map[string]any)["status"].(map[string]any)["id"] != "COMPLETED" {
				return false
			}
			location, _ = body.(map[string]any)["operation"].(map[string]any)["location"].(string)
			return true
		}, 30*time.Second, 5*time.Millisecond)
		return location
	}
	status, body = srv.call(http.MethodPost, "/jobs/"+id+"/savepoints", `{"target-directory": "openapi-sp"}`)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	awaitSavepoint(body.(map[string]any)["request-id"].(string))
	srv.call(http.MethodGet, "/jobs/"+id+"/checkpoints", "")
	srv.call(http.MethodGet, "/jobs/"+id+"/checkpoints/details/1", "")
	status, body = srv.call(http.MethodPost, "/jobs/"+id+"/stop", `{"targetDirectory": "openapi-stop"}`)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	stopped := awaitSavepoint(body.(map[string]any)["request-id"].(string))
	require.Contains(t, stopped, "openapi-stop/savepoint-")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Dispatcher().JobResult(ctx, JobID(id))
	require.NoError(t, err)
	for _, op := range doc.ops {
		if op.method == http.MethodGet {
			srv.call(op.method, concrete(op.path, real), "")
		}
	}
	srv.call(http.MethodPost, "/jobs/"+id+"/savepoints", "")
	srv.call(http.MethodPatch, "/jobs/"+id+"?mode=cancel", "")
	srv.call(http.MethodPatch, "/jobs/"+id+"?mode=suspend", "")
	srv.call(http.MethodPost, "/jobs", fmt.Sprintf(`{"name": "openapi", "savepointPath": %q, "parallelism": 1, "bogus": 1}`, stopped))
	srv.call(http.MethodPost, "/jobs", `{"name": "openapi", "savepointPath": "/etc", "parallelism": 1}`)
	srv.call(http.MethodPost, "/jobs/"+id+"/savepoints", `{"target-directory": "/etc"}`)
	status, body = srv.call(http.MethodPost, "/jobs", fmt.Sprintf(`{"name": "openapi", "savepointPath": %q, "parallelism": 1}`, stopped))
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	id2 := body.(map[string]any)["jobid"].(string)
	srv.call(http.MethodPatch, "/jobs/"+id2+"?mode=cancel", "")
	_, err = c.Dispatcher().JobResult(ctx, JobID(id2))
	require.NoError(t, err)

	// Under Flink's version prefix too.
	srv.call(http.MethodGet, "/v1/overview", "")

	var summary []string
	for _, k := range slices.Sorted(maps.Keys(srv.answered)) {
		codes := slices.Compact(slices.Sorted(slices.Values(srv.answered[k])))
		summary = append(summary, fmt.Sprintf("%s %v", k, codes))
	}
	sort.Strings(summary)
	t.Logf("answers checked:\n%s", strings.Join(summary, "\n"))
}

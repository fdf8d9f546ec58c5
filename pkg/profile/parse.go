package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mfcheck/mfcheck/internal/yamlnode"
)

// maxFileSize bounds LoadFile: a profile file is a few kilobytes, and a
// mistaken path (a log, a disk image) should fail fast instead of being read.
const maxFileSize = 4 << 20

// maxErrors bounds the errors reported for one file.
const maxErrors = 25

// maxNodes bounds the YAML values visited per Parse. YAML aliases let a small
// file refer to the same list many times; the bound keeps such a file from
// costing more than a large honest one.
const maxNodes = 1 << 20

// LoadFile reads user profiles from a YAML file with the built-in schema:
// either a top-level "profiles:" list or a single profile document (several
// documents separated by "---" are allowed). Unknown keys are errors, and
// every error names the file, line and field.
func LoadFile(path string) ([]*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("profiles file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("profiles file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, &Error{Source: path, Msg: fmt.Sprintf("file is larger than %d bytes; is this a profiles file?", maxFileSize)}
	}
	return Parse(data, path)
}

// Parse reads profiles from YAML data (see LoadFile for the schema); source
// names the data in errors. The profiles are validated and normalised, and
// have Builtin false and Origin "source:line".
func Parse(data []byte, source string) ([]*Profile, error) {
	docs, err := decodeDocs(data)
	if err != nil {
		return nil, yamlError(source, err)
	}
	w := &walker{src: source}
	for _, doc := range docs {
		w.document(doc)
	}
	var out []*Profile
	firstLine := map[string]int{}
	for _, d := range w.drafts {
		if len(w.errs) > maxErrors {
			break
		}
		p, errs := build(d, source)
		if len(errs) > 0 {
			w.errs = append(w.errs, errs...)
			continue
		}
		if first, dup := firstLine[p.ID]; dup {
			w.errs = append(w.errs, &Error{Source: source, Line: d.line, Profile: p.ID, Field: KeyID,
				Msg: fmt.Sprintf("%q is already defined at line %d", p.ID, first), Err: ErrDuplicateID})
			continue
		}
		firstLine[p.ID] = d.line
		p.Origin = fmt.Sprintf("%s:%d", source, d.line)
		out = append(out, p)
	}
	if len(w.errs) == 0 && len(out) == 0 {
		w.errs = append(w.errs, &Error{Source: source, Msg: "no profiles found; write a profile, or \"profiles:\" followed by a list of them"})
	}
	if len(w.errs) > 0 {
		if len(w.errs) > maxErrors {
			w.errs = append(w.errs[:maxErrors:maxErrors], fmt.Errorf("%s: %w", source, errTooMany))
		}
		return nil, errors.Join(w.errs...)
	}
	return out, nil
}

// decodeDocs parses every YAML document into a node tree. The tree, not Go
// structs, is what Parse walks: it keeps the line of every value, lets Parse
// accept both file shapes, and lets it reject unknown keys itself with a
// "did you mean" (the job yaml.v3's KnownFields(true) does for structs, but
// without the suggestion and only for the first unknown key).
func decodeDocs(data []byte) (docs []*yaml.Node, err error) {
	// yaml.v3 has panicked on hostile input in the past; a profile file must
	// give an error, never bring the tool down.
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, err
		}
		docs = append(docs, &n)
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 syntax error into an *Error with the line moved
// to where editors and other tools expect it ("file:12: ...").
func yamlError(source string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			return &Error{Source: source, Line: line, Msg: "invalid YAML: " + m[2]}
		}
	}
	return &Error{Source: source, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// walker turns YAML node trees into drafts, collecting every shape error.
type walker struct {
	src    string
	drafts []*draft
	count  int // profiles seen, to number those without an id
	errs   []error
	nodes  int
	over   bool
}

func (w *walker) errf(line int, profile, field, format string, args ...any) {
	if len(w.errs) > maxErrors {
		return // Parse reports "too many errors" instead
	}
	w.errs = append(w.errs, &Error{Source: w.src, Line: line, Profile: profile, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows an alias to its anchored node and counts the visit.
func (w *walker) resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	w.nodes++
	return n
}

func (w *walker) exhausted() bool {
	if w.nodes > maxNodes && !w.over {
		// Report once, keeping room for this error; every loop then stops.
		w.over = true
		w.errs = w.errs[:min(len(w.errs), maxErrors)]
		w.errf(0, "", "", "too many values (more than %d, counting YAML aliases each time they are used)", maxNodes)
	}
	return w.over
}

func (w *walker) document(doc *yaml.Node) {
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return // a document holding only comments
		}
		root = root.Content[0]
	}
	root = w.resolve(root)
	if yamlnode.IsNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		w.errf(root.Line, "", "", "want a profile (a mapping) or \"profiles:\" followed by a list, got %s", yamlnode.KindName(root))
		return
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := w.resolve(root.Content[i]); k.Kind == yaml.ScalarNode && k.Value == "profiles" {
			list = w.resolve(root.Content[i+1])
		}
	}
	if list == nil {
		// A single profile document.
		w.count++
		w.profile(root, w.count, true)
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := w.resolve(root.Content[i]); k.Kind != yaml.ScalarNode || k.Value != "profiles" {
			w.errf(k.Line, "", "", "unknown top-level key %q; a file with \"profiles:\" holds nothing else", k.Value)
		}
	}
	if yamlnode.IsNull(list) {
		return
	}
	if list.Kind != yaml.SequenceNode {
		w.errf(list.Line, "", "profiles", "want a list of profiles, got %s", yamlnode.KindName(list))
		return
	}
	for _, item := range list.Content {
		if w.exhausted() {
			return
		}
		item = w.resolve(item)
		w.count++
		if item.Kind != yaml.MappingNode {
			w.errf(item.Line, fmt.Sprintf("#%d", w.count), "", "want a profile (a mapping of keys such as id, name, kind), got %s", yamlnode.KindName(item))
			continue
		}
		w.profile(item, w.count, false)
	}
}

// profile walks one profile mapping into a draft, checking keys and shapes.
func (w *walker) profile(m *yaml.Node, index int, topLevel bool) {
	d := &draft{line: m.Line, index: index, vals: map[string][]value{}}
	label := fmt.Sprintf("#%d", index)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := w.resolve(m.Content[i]); k.Kind == yaml.ScalarNode && k.Value == KeyID {
			if v := w.resolve(m.Content[i+1]); v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) != "" {
				label = strings.TrimSpace(v.Value)
			}
		}
	}
	keyLine := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if w.exhausted() {
			return
		}
		k, v := w.resolve(m.Content[i]), w.resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			w.errf(k.Line, label, "", "keys must be plain names, got %s", yamlnode.KindName(k))
			continue
		}
		key := k.Value
		spec := specs[key]
		if spec == nil {
			candidates := keys(nil)
			if topLevel {
				candidates = append(candidates, "profiles")
			}
			msg := "unknown field" + didYouMean(key, candidates)
			if key == "<<" {
				msg = "YAML merge keys (<<) are not supported; repeat the fields"
			}
			w.errf(k.Line, label, key, "%s", msg)
			continue
		}
		if first, dup := keyLine[key]; dup {
			w.errf(k.Line, label, key, "given twice (first at line %d)", first)
			continue
		}
		keyLine[key] = k.Line
		if yamlnode.IsNull(v) {
			continue // "key:" with nothing after it, or "key: null": absent
		}
		if !spec.list {
			if v.Kind != yaml.ScalarNode {
				w.errf(v.Line, label, key, "want a single value, got %s", yamlnode.KindName(v))
				continue
			}
			d.vals[key] = []value{{s: v.Value, line: v.Line}}
			continue
		}
		if v.Kind != yaml.SequenceNode {
			w.errf(v.Line, label, key, "want a list (e.g. [a, b] or one \"- item\" per line), got %s", yamlnode.KindName(v))
			continue
		}
		vals := []value{}
		for _, item := range v.Content {
			if w.exhausted() {
				return
			}
			item = w.resolve(item)
			if item.Kind != yaml.ScalarNode || yamlnode.IsNull(item) {
				w.errf(item.Line, label, key, "list items must be single values, got %s", yamlnode.KindName(item))
				continue
			}
			vals = append(vals, value{s: item.Value, line: item.Line})
		}
		d.vals[key] = vals
	}
	w.drafts = append(w.drafts, d)
}

package profile

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mfcheck/mfcheck/internal/suggest"
)

//go:embed profiles.yaml
var builtinData []byte

// builtinSource names the embedded file in errors.
const builtinSource = "profiles.yaml (built in)"

var (
	// ErrUnknownProfile is wrapped by Registry.Get's error for an unknown id.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrDuplicateID is wrapped by the errors of Parse and Registry.With when
	// two profiles share an id.
	ErrDuplicateID = errors.New("duplicate profile id")
)

// Registry is a read-only set of profiles keyed by ID. It is safe for
// concurrent use; its methods hand out copies, so callers cannot change the
// shared built-in profiles. The zero Registry is empty and usable.
type Registry struct {
	byID   map[string]*Profile
	sorted []*Profile // by ID
}

var builtin struct {
	once sync.Once
	reg  *Registry
}

// Builtin returns the registry of embedded profiles, parsed once. The data is
// part of the binary and a test parses it, so a failure here is a bug in
// mfcheck, not a user error: Builtin panics with the validation errors.
func Builtin() *Registry {
	builtin.once.Do(func() {
		reg, err := parseBuiltin(builtinData)
		if err != nil {
			panic("profile: the embedded profiles.yaml is invalid (a bug in mfcheck): " + err.Error())
		}
		builtin.reg = reg
	})
	return builtin.reg
}

func parseBuiltin(data []byte) (*Registry, error) {
	ps, err := Parse(data, builtinSource)
	if err != nil {
		return nil, err
	}
	r := &Registry{byID: make(map[string]*Profile, len(ps))}
	for _, p := range ps {
		p.Builtin = true
		p.Origin = "built-in"
		r.byID[p.ID] = p
		r.sorted = append(r.sorted, p)
	}
	sort.Slice(r.sorted, func(i, j int) bool { return r.sorted[i].ID < r.sorted[j].ID })
	return r, nil
}

// Get returns a copy of the profile with the given id (case-insensitive). An
// unknown id gives an error wrapping ErrUnknownProfile that suggests close
// ids ("did you mean mimecast-eu?"), or lists them all when none is close.
func (r *Registry) Get(id string) (*Profile, error) {
	q := strings.ToLower(strings.TrimSpace(id))
	if p, ok := r.byID[q]; ok {
		return p.Clone(), nil
	}
	if q == "" {
		return nil, fmt.Errorf("%w: no profile id given; known: %s", ErrUnknownProfile, strings.Join(r.ids(), ", "))
	}
	ids := r.ids()
	if m := closest(q, ids, 5); len(m) > 0 {
		return nil, fmt.Errorf("%w %q (did you mean %s?)", ErrUnknownProfile, id, orList(m))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w %q: no profiles are defined", ErrUnknownProfile, id)
	}
	return nil, fmt.Errorf("%w %q; known profiles: %s", ErrUnknownProfile, id, strings.Join(ids, ", "))
}

// All returns copies of every profile, sorted by ID.
func (r *Registry) All() []*Profile {
	out := make([]*Profile, len(r.sorted))
	for i, p := range r.sorted {
		out[i] = p.Clone()
	}
	return out
}

func (r *Registry) ids() []string {
	out := make([]string, len(r.sorted))
	for i, p := range r.sorted {
		out[i] = p.ID
	}
	return out
}

// With returns a new registry holding r's profiles plus ps (user profiles:
// Builtin is set to false). Each is validated and normalised like a profile
// read from a file. An id that is already taken, by a built-in profile or
// another of ps, is an error wrapping ErrDuplicateID: silently replacing a
// built-in profile would change what "--profile mimecast-eu" means without
// the user noticing. r is not changed.
func (r *Registry) With(ps ...*Profile) (*Registry, error) {
	out := &Registry{byID: make(map[string]*Profile, len(r.byID)+len(ps))}
	for id, p := range r.byID {
		out.byID[id] = p
	}
	var errs []error
	for i, p := range ps {
		if p == nil {
			errs = append(errs, &Error{Profile: fmt.Sprintf("#%d", i+1), Msg: "nil profile"})
			continue
		}
		d := draftOf(p)
		d.index = i + 1
		q, es := build(d, p.Origin)
		if len(es) > 0 {
			errs = append(errs, es...)
			continue
		}
		q.Origin = p.Origin
		q.Builtin = false
		if prev, dup := out.byID[q.ID]; dup {
			errs = append(errs, &Error{Source: p.Origin, Profile: q.ID, Field: KeyID, Err: ErrDuplicateID,
				Msg: fmt.Sprintf("the id %q is already used by %s; give this profile another id (for example %q)",
					q.ID, describeOrigin(prev), q.ID+"-custom")})
			continue
		}
		out.byID[q.ID] = q
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, p := range out.byID {
		out.sorted = append(out.sorted, p)
	}
	sort.Slice(out.sorted, func(i, j int) bool { return out.sorted[i].ID < out.sorted[j].ID })
	return out, nil
}

func describeOrigin(p *Profile) string {
	switch {
	case p.Builtin:
		return "the built-in profile"
	case p.Origin != "":
		return "the profile defined at " + p.Origin
	}
	return "another profile"
}

// DetectMX returns copies of the profiles whose MX patterns match host, most
// specific first (the pattern with the most literal characters: an exact
// "eu-smtp-inbound-1.mimecast.com" before the grid-wide
// "*-smtp-inbound-?.mimecast.com"), then by ID. It answers "whose MX host is
// this?", e.g. Microsoft 365 for "contoso-com.mail.protection.outlook.com".
func (r *Registry) DetectMX(host string) []*Profile {
	h, ok := hostLabels(host)
	if !ok {
		return nil
	}
	type hit struct {
		p     *Profile
		score int
	}
	var hits []hit
	for _, p := range r.sorted {
		best := -1
		for _, pat := range p.MXHosts {
			c, err := compilePattern(pat)
			if err == nil && c.match(h) && c.literal > best {
				best = c.literal
			}
		}
		if best >= 0 {
			hits = append(hits, hit{p, best})
		}
	}
	// r.sorted is in ID order, so a stable sort keeps ID order among equals.
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].score > hits[j].score })
	out := make([]*Profile, len(hits))
	for i, h := range hits {
		out[i] = h.p.Clone()
	}
	return out
}

// closest returns up to max candidates close to s: those at the smallest
// edit distance (when it is small for s's length), else those that contain s
// or start with it, so "mimecast" lists the Mimecast grids.
func closest(s string, candidates []string, max int) []string {
	limit := len(s) / 3
	if limit < 1 {
		limit = 1
	}
	if limit > 3 {
		limit = 3
	}
	best, out := limit+1, []string(nil)
	for _, c := range candidates {
		d := suggest.EditDistance(s, c)
		switch {
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	if len(out) == 0 && len(s) >= 3 {
		for _, c := range candidates {
			if strings.Contains(c, s) || strings.Contains(s, c) {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// orList joins names as "a", "a or b", "a, b or c".
func orList(ss []string) string {
	if len(ss) <= 1 {
		return strings.Join(ss, "")
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " or " + ss[len(ss)-1]
}

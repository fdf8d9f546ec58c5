package spf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// section renders the analysis as the report's SPF section.
func (a *Analysis) section() *report.SPF {
	t := a.Tree
	s := &report.SPF{
		Domain:      a.Domain,
		Lookups:     t.Lookups,
		LookupLimit: t.Limits.Lookups,
		VoidLookups: max(t.Voids4, t.Voids6),
		VoidLimit:   t.Limits.Voids,
		Complete:    len(t.Incomplete) == 0,
		Incomplete:  t.Incomplete,
		Unknown:     t.Unknown,
		Tree:        nodeSection(t.Root),
	}
	if f := a.Flattened; f != nil {
		out := &report.SPFFlattened{Lookups: f.Lookups, MaxLookups: f.MaxLookups, Kept: f.Kept, Replaced: f.Replaced, Added: f.Added,
			Warnings: f.Warnings, Records: []report.SPFPublish{}}
		for _, p := range f.Records {
			out.Records = append(out.Records, report.SPFPublish{Name: p.Name, Strings: p.Strings, AnswerOctets: p.AnswerOctets})
		}
		s.Flattened = out
	}
	return s
}

func nodeSection(n *Node) *report.SPFNode {
	out := &report.SPFNode{Domain: n.Domain, Record: n.Text}
	if n.Err != nil {
		out.Error = nodeError(n)
	}
	if n.Record == nil {
		return out
	}
	for _, ti := range n.Terms {
		st := report.SPFTerm{Index: ti.Term.Index, Text: ti.Term.Text, Cost: ti.Cost, Total: ti.Total, OverLimit: ti.OverLimit, Note: termNote(ti)}
		if ti.Void4 {
			st.Void = append(st.Void, "ipv4")
		}
		if ti.Void6 {
			st.Void = append(st.Void, "ipv6")
		}
		if ti.Child != nil {
			st.Child = nodeSection(ti.Child)
		}
		out.Terms = append(out.Terms, st)
	}
	return out
}

// nodeError says in words why a node has no usable record.
func nodeError(n *Node) string {
	switch {
	case errors.Is(n.Err, ErrNotExpanded):
		return "not expanded: " + strings.TrimPrefix(n.Err.Error(), ErrNotExpanded.Error()+": ")
	case n.Result == TempError:
		return "lookup failed: " + trimClass(n.Err)
	case errors.Is(n.Err, ErrLoop):
		return "loop: " + trimClass(n.Err)
	case n.Result == None:
		return "no SPF record: " + trimClass(n.Err)
	}
	return n.Err.Error()
}

// termNote says what a term resolved to, or why it counts nothing.
func termNote(ti *TermInfo) string {
	switch {
	case ti.Skip != NotSkipped:
		return ti.Skip.String()
	case ti.Unknown != "":
		return "not evaluated in advance: " + ti.Unknown
	case ti.Invalid != nil:
		return "invalid name, never matches: " + trimClass(ti.Invalid)
	case ti.Addr != nil && ti.Term.Mechanism.Kind == MechExists:
		return describeLookup("A", &ti.Addr.V4)
	case ti.Addr != nil:
		return describeLookup("A", &ti.Addr.V4) + "; " + describeLookup("AAAA", &ti.Addr.V6)
	case ti.MX != nil:
		return describeMX(ti.MX)
	case ti.Term.Mechanism != nil && ti.Term.Mechanism.Kind == MechInclude && ti.Child != nil && ti.Child.Domain != ti.Term.Mechanism.Domain.String():
		return "expands to " + ti.Child.Domain
	}
	return ""
}

func describeLookup(qtype string, l *AddrLookup) string {
	switch {
	case l.Err != nil:
		return fmt.Sprintf("%s lookup failed: %s", qtype, trimClass(l.Err))
	case l.Void:
		return "no " + qtype + " record"
	}
	addrs := make([]string, 0, len(l.Addrs))
	for i, a := range l.Addrs {
		if i == 4 {
			addrs = append(addrs, fmt.Sprintf("and %d more", len(l.Addrs)-4))
			break
		}
		addrs = append(addrs, a.String())
	}
	return fmt.Sprintf("%s %s", qtype, strings.Join(addrs, ", "))
}

func describeMX(mx *MXLookup) string {
	switch {
	case mx.Err != nil:
		return "MX lookup failed: " + trimClass(mx.Err)
	case mx.Void:
		return "no MX record"
	case mx.TooMany:
		return fmt.Sprintf("%d MX records, over the limit: permerror", mx.Count)
	}
	addrs := 0
	var failed []string
	for _, h := range mx.Hosts {
		addrs += len(h.Addr.V4.Addrs) + len(h.Addr.V6.Addrs)
		for _, l := range []*AddrLookup{&h.Addr.V4, &h.Addr.V6} {
			if l.Err != nil && !errors.Is(l.Err, ErrInvalidDomain) {
				failed = append(failed, h.Name)
				break
			}
		}
	}
	s := plural(len(mx.Hosts), "MX host") + ", " + plural(addrs, "address")
	if len(failed) > 0 {
		s += "; lookups failed for " + strings.Join(failed, ", ")
	}
	return s
}

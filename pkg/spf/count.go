package spf

import (
	"errors"
	"fmt"
)

// count walks the tree in evaluation order as for a client that no term
// matches, the worst case, and fills in what every term costs, the running
// total after it, whether it is reached over the lookup limit, and which of
// its lookups are void; it also collects what is incomplete or unknown.
//
// Every include and redirect is counted each time the walk meets it, so a
// target included twice costs twice, as it does in a real evaluation
// (RFC 7208 §4.6.4 counts terms evaluated, not names); a redirect next to
// all and terms after all are never evaluated and cost nothing.
func (t *Tree) count() {
	c := &counter{tree: t, exact: true}
	c.node(t.Root)
	t.Lookups, t.Voids4, t.Voids6, t.CountsExact = c.lookups, c.voids4, c.voids6, c.exact
}

type counter struct {
	tree                    *Tree
	lookups, voids4, voids6 int
	exact                   bool
}

func (c *counter) node(n *Node) {
	if n.Err != nil {
		// Not fetched (a bound) or not answered: what lies below is unknown.
		if errors.Is(n.Err, ErrNotExpanded) || n.Result == TempError {
			c.exact = false
			c.incomplete("%s: %v", n.Domain, n.Err)
		}
		return
	}
	if n.Record == nil {
		return
	}
	var redirect *TermInfo
	for _, ti := range n.Terms {
		switch {
		case ti.Term == n.Record.Redirect:
			redirect = ti // evaluated after every mechanism (§6.1)
		case ti.Term.Mechanism != nil:
			c.term(n, ti)
		default:
			ti.Total = c.lookups // exp= and unknown modifiers cost nothing
		}
	}
	if redirect != nil {
		c.term(n, redirect)
	}
}

// term counts one evaluated mechanism or redirect.
func (c *counter) term(n *Node, ti *TermInfo) {
	start, start4, start6 := c.lookups, c.voids4, c.voids6
	defer func() {
		ti.Cost, ti.Total = c.lookups-start, c.lookups
		ti.VoidCost4, ti.VoidCost6 = c.voids4-start4, c.voids6-start6
	}()
	switch {
	case ti.Skip == SkipAfterAll, ti.Skip == SkipRedirectWithAll:
		return
	case ti.Term.Mechanism != nil && !ti.Term.Mechanism.Kind.CountsLookup():
		return
	}
	c.lookups++
	ti.OverLimit = c.lookups > c.tree.Limits.Lookups
	switch {
	case ti.Skip == SkipBound:
		c.exact = false
		c.incomplete("%s: term %d %q %s", n.Domain, ti.Term.Index, ti.Term.Text, ti.Skip)
		return
	case ti.Unknown != "":
		c.tree.Unknown = append(c.tree.Unknown, fmt.Sprintf("%s: term %d %q: %s", n.Domain, ti.Term.Index, ti.Term.Text, ti.Unknown))
		return
	case ti.Child != nil:
		c.node(ti.Child)
	case ti.Addr != nil && ti.Term.Mechanism.Kind == MechExists:
		c.lookupErr(n, ti, ti.Addr.V4.Err)
		// §5.7: one A query whatever the client's family.
		ti.Void4, ti.Void6 = ti.Addr.V4.Void, ti.Addr.V4.Void
	case ti.Addr != nil:
		c.lookupErr(n, ti, ti.Addr.V4.Err)
		c.lookupErr(n, ti, ti.Addr.V6.Err)
		ti.Void4, ti.Void6 = ti.Addr.V4.Void, ti.Addr.V6.Void
	case ti.MX != nil:
		c.lookupErr(n, ti, ti.MX.Err)
		for i := range ti.MX.Hosts {
			c.lookupErr(n, ti, ti.MX.Hosts[i].Addr.V4.Err)
			c.lookupErr(n, ti, ti.MX.Hosts[i].Addr.V6.Err)
		}
		// The MX query is the mechanism's only void lookup: its hosts'
		// address lookups are not counted (eval.go, mx).
		ti.Void4, ti.Void6 = ti.MX.Void, ti.MX.Void
	}
	if ti.Void4 {
		c.voids4++
	}
	if ti.Void6 {
		c.voids6++
	}
}

// lookupErr records a failed lookup of a term as incomplete; an invalid
// name is not a failure (the mechanism simply does not match).
func (c *counter) lookupErr(n *Node, ti *TermInfo, err error) {
	if err != nil && !errors.Is(err, ErrInvalidDomain) {
		c.incomplete("%s: term %d %q: %v", n.Domain, ti.Term.Index, ti.Term.Text, err)
	}
}

func (c *counter) incomplete(format string, args ...any) {
	c.tree.Incomplete = append(c.tree.Incomplete, fmt.Sprintf(format, args...))
}

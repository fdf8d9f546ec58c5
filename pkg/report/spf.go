package report

// SPF is the SPF section of a report (`mfcheck spf`, `mfcheck check`): the
// include/redirect tree of the domain's record with the arithmetic behind
// the DNS-lookup count, so a reader can follow how the total is reached,
// and the flattened record set when one was asked for (`--flatten`).
//
// It is plain data filled in by pkg/spf; this package only renders it.
type SPF struct {
	// Domain is the domain whose record is the root of Tree.
	Domain string `json:"domain"`
	// Lookups is the worst-case number of DNS-querying terms one
	// check_host() evaluation pays (RFC 7208 §4.6.4): what a client that no
	// term matches costs. Clients matched early pay less.
	Lookups     int `json:"lookups"`
	LookupLimit int `json:"lookup_limit"`
	// VoidLookups is the worst-case number of lookups that answer NXDOMAIN
	// or NODATA, the larger of the counts for IPv4 and IPv6 clients.
	VoidLookups int `json:"void_lookups"`
	VoidLimit   int `json:"void_limit"`
	// Complete is false when part of the tree could not be fetched (a DNS
	// failure) or the expansion stopped at one of its bounds; Lookups and
	// VoidLookups are then lower bounds and Incomplete says why.
	Complete   bool     `json:"complete"`
	Incomplete []string `json:"incomplete,omitempty"`
	// Unknown lists the parts whose outcome depends on the client or the
	// sender (macros, ptr, exists) and so cannot be evaluated in advance.
	Unknown []string `json:"unknown,omitempty"`
	// Tree is the domain's record and, below its include and redirect terms,
	// the records they lead to.
	Tree *SPFNode `json:"tree"`
	// Flattened is set when a flattened record set was asked for.
	Flattened *SPFFlattened `json:"flattened,omitempty"`
}

// SPFNode is one record of the tree: the root domain's, or the target of an
// include or redirect.
type SPFNode struct {
	Domain string `json:"domain"`
	// Record is the SPF record (the TXT strings joined); empty when there is
	// none.
	Record string `json:"record,omitempty"`
	// Error says why the node has no usable record: no SPF record, several,
	// a syntax error, a loop, a DNS failure, or not expanded (a bound).
	Error string `json:"error,omitempty"`
	// Terms are the record's terms in order (modifiers included).
	Terms []SPFTerm `json:"terms,omitempty"`
}

// SPFTerm is one term of a record, with what it costs.
type SPFTerm struct {
	// Index is the 1-based position of the term in its record.
	Index int    `json:"index"`
	Text  string `json:"text"`
	// Cost is the DNS lookups the term counts, its subtree included: 1 for
	// a, mx, ptr, exists, and for include and redirect plus the cost of
	// the target's record; 0 for ip4, ip6, all, exp= and terms that are
	// never evaluated.
	Cost int `json:"cost"`
	// Total is the running count after this term when an evaluation walks
	// the whole tree in order (the worst case).
	Total int `json:"total"`
	// OverLimit is set when an evaluation that reaches this term has
	// already used up the lookup limit: such clients get permerror here.
	OverLimit bool `json:"over_limit,omitempty"`
	// Void lists the client families for which the term's lookup is void
	// (NXDOMAIN or NODATA): "ipv4", "ipv6".
	Void []string `json:"void,omitempty"`
	// Note says what the term resolved to ("2 addresses", "3 MX hosts") or
	// why it counts nothing ("never evaluated: after all").
	Note string `json:"note,omitempty"`
	// Child is the record an include or redirect leads to.
	Child *SPFNode `json:"child,omitempty"`
}

// SPFFlattened is an equivalent record set that needs at most MaxLookups
// DNS lookups: includes replaced by the addresses they authorize today.
type SPFFlattened struct {
	// Lookups is what the flattened set needs (worst case).
	Lookups    int `json:"lookups"`
	MaxLookups int `json:"max_lookups"`
	// Records are the TXT records to publish, the domain's own first.
	Records []SPFPublish `json:"records"`
	// Kept are the terms left as they were (still looked up live);
	// Replaced are the terms replaced by addresses; Added are includes the
	// set gains (the gateway's, when the record lacks it).
	Kept     []string `json:"kept,omitempty"`
	Replaced []string `json:"replaced,omitempty"`
	Added    []string `json:"added,omitempty"`
	// Warnings say what flattening costs: vendor ranges are frozen, a
	// lookup target could not be met, and so on.
	Warnings []string `json:"warnings,omitempty"`
}

// SPFPublish is one TXT record to publish.
type SPFPublish struct {
	Name string `json:"name"`
	// Strings are the record's character-strings, each at most 255 octets
	// (RFC 7208 §3.3); receivers join them with nothing in between.
	Strings []string `json:"strings"`
	// AnswerOctets is the size of the DNS answer for the name's TXT
	// records, other TXT records at the name included; RFC 7208 §3.4 asks
	// to stay within 512.
	AnswerOctets int `json:"answer_octets"`
}

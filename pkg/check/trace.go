package check

import (
	"context"
	"net/mail"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/msgtrace"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// TraceConfig is a run of `mfcheck trace`: one received message.
type TraceConfig struct {
	Raw []byte
	// Source says where Raw was read, for the report.
	Source string
	// Profile is the gateway whose hop should be in the chain; Mailbox the
	// platform behind it (both may be nil).
	Profile, Mailbox *profile.Profile
	// AuthServID is the only authserv-id whose Authentication-Results are
	// trusted (RFC 8601 §5); empty trusts the topmost header, marked so.
	AuthServID string
	// VerifyDKIM looks the signing keys up through the run's resolver.
	VerifyDKIM bool
	Mode       string
	Trace      bool
	Version    string
}

// RunTrace analyses a received message and returns the finalized report:
// the trace.* findings and the Received chain. The report is named after
// the recipient's domain when the To header has one.
func RunTrace(ctx context.Context, cfg TraceConfig, deps Deps) *report.Report {
	now := deps.clock()
	start := now()
	o := msgtrace.Options{Profile: cfg.Profile, Mailbox: cfg.Mailbox, AuthServID: cfg.AuthServID, Now: deps.Now}
	if cfg.VerifyDKIM && deps.DNS != nil {
		o.Resolver = deps.DNS
	}
	t := msgtrace.Analyze(ctx, cfg.Raw, o)

	rep := newReport(recipientDomain(t.To), cfg.Mode, cfg.Version, start)
	if cfg.Profile != nil {
		rep.Profile = cfg.Profile.ID
	}
	rep.Add(t.Findings...)
	rep.Trace = t.Report(cfg.Source)
	return finish(rep, start, now, deps.DNS, cfg.Trace)
}

// recipientDomain is the domain of the first address of a To header, or
// "message" when there is none to read.
func recipientDomain(to string) string {
	if list, err := mail.ParseAddressList(to); err == nil && len(list) > 0 {
		if i := strings.LastIndexByte(list[0].Address, '@'); i >= 0 {
			return strings.ToLower(list[0].Address[i+1:])
		}
	}
	return "message"
}

package smtpprobe

import "strings"

// Verdict words, the same as report.TLSEndpoint.Verdict.
const (
	VerdictVerified     = "verified"
	VerdictUntrusted    = "untrusted"
	VerdictNoStartTLS   = "no-starttls"
	VerdictTLSFailed    = "tls-failed"
	VerdictNotAccepting = "not-accepting"
	VerdictUnreachable  = "unreachable"
)

// Verdict sums the probe up in one word and, unless verified, a reason,
// for the at-a-glance row of a report (report.TLSEndpoint).
func (r *Result) Verdict() (verdict, reason string) {
	switch {
	case r.TLS != nil:
		if r.TLS.Verified {
			return VerdictVerified, ""
		}
		var why []string
		switch {
		case r.TLS.ChainProblem != "":
			why = append(why, string(r.TLS.ChainProblem))
		case !r.TLS.ChainTrusted:
			why = append(why, "untrusted chain")
		}
		if r.TLS.HostnameChecked && !r.TLS.HostnameOK {
			why = append(why, "wrong name")
		}
		if !r.TLS.HostnameChecked {
			why = append(why, "no name to check")
		}
		for i, c := range r.TLS.Chain {
			if i > 0 && c.SelfSigned {
				continue
			}
			if r.TLS.CheckedAt.After(c.NotAfter) {
				why = append(why, "expired")
				break
			}
			if r.TLS.CheckedAt.Before(c.NotBefore) {
				why = append(why, "not yet valid")
				break
			}
		}
		if len(why) == 0 && r.TLS.VerifyError != "" {
			why = append(why, r.TLS.VerifyError)
		}
		return VerdictUntrusted, strings.Join(why, ", ")
	case r.Banner != nil && r.Banner.Code != 220:
		return VerdictNotAccepting, r.Banner.String()
	case r.ErrPhase == PhaseStartTLS || r.ErrPhase == PhaseHandshake:
		return VerdictTLSFailed, trimPhase(r.Err)
	case r.Err != "":
		return VerdictUnreachable, r.Err
	case !r.StartTLSOffered && !r.Target.ImplicitTLS:
		return VerdictNoStartTLS, ""
	}
	return VerdictUnreachable, r.Err
}

package smtpprobe

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// Finding IDs of sends; docs/checks.md describes each.
const (
	IDSendInbound  = "send.inbound"
	IDSendOutbound = "send.outbound"
	IDBypass       = "bypass.direct-delivery"
)

// Finding judges the send: send.inbound, send.outbound or
// bypass.direct-delivery by Path.
//
// send.*: pass when the message was accepted after DATA (or, with
// QuitAfter, the stage was); warn for a 4xx (temporary: greylisting, rate
// limits) and for a message accepted without TLS (it crossed the network
// readable by anyone on the path; an MX or smart host that offers no
// STARTTLS is tls.starttls-offered's warning too); fail for a 5xx at any
// stage, required TLS not offered or not verified, AUTH refused or not
// offered; error when no server could be reached or the session broke
// (including mid-DATA, where we cannot tell whether the message was
// taken).
//
// bypass.direct-delivery: fail when RCPT was accepted (the mailbox
// platform takes mail that did not come through the gateway), pass when
// the server refused with a 5xx, warn on a 4xx (inconclusive), error when
// it could not be asked.
func (r *SendResult) Finding() report.Finding {
	f := report.Finding{ID: IDSendInbound, Subject: r.subject(), Evidence: r.evidence()}
	switch r.Path {
	case PathOutbound:
		f.ID = IDSendOutbound
	case PathBypass:
		f.ID = IDBypass
		r.bypassFinding(&f)
		return f
	}
	r.sendFinding(&f)
	return f
}

func (r *SendResult) subject() string {
	switch {
	case r.Subject != "":
		return r.Subject
	case len(r.To) > 0:
		return strings.Join(r.To, ", ")
	}
	return string(r.Path)
}

func (r *SendResult) sendFinding(f *report.Finding) {
	set := func(st report.Status, msg, fix string) { f.Status, f.Message, f.Remediation = st, msg, fix }
	who, rcpts, doms := r.subject(), strings.Join(r.To, ", "), r.domains()
	outbound := r.Path == PathOutbound
	switch {
	case r.ErrKind == KindInvalid:
		set(report.StatusError, "Could not send: "+trimPhase(r.Err), "Fix the send options (recipients, sender, message).")
	case r.Accepted && r.QuitAfter == "":
		msg := fmt.Sprintf("%s accepted the test message for %s %s", who, rcpts, r.tlsPhrase())
		if r.QueueID != "" {
			msg += " (queue id " + r.QueueID + ")"
		}
		if r.Token != "" {
			msg += "; token " + r.Token
		}
		if !r.TLSUsed {
			fix := "Offer STARTTLS with a valid certificate on every MX host (RFC 3207), so mail for " + doms + " is encrypted in transit."
			if outbound {
				fix = "Use TLS to the smart host: enable STARTTLS on it, or require TLS in the sending connector."
			}
			set(report.StatusWarn, msg+"; the message travelled in clear", fix)
			return
		}
		set(report.StatusPass, msg, "")
	case r.Accepted:
		set(report.StatusPass, r.stageAccepted(who, doms)+" "+r.tlsPhrase()+"; nothing was delivered (stopped before DATA)", "")
	case r.ErrKind == KindReply && r.Code/100 == 4:
		set(report.StatusWarn,
			fmt.Sprintf("Temporary failure at %s from %s: %s; try again later", stageWord(r.Failed), who, r.replyOrErr()),
			"A 4xx reply is temporary (RFC 5321 §4.2.1): greylisting, a rate limit or a busy server. Run the test again in a few minutes; if it persists, the server's log says why.")
	case r.ErrKind == KindReply && r.Code/100 == 5:
		set(report.StatusFail, r.refusal(who), r.refusalFix(outbound, doms))
	case r.ErrKind == KindNoTLS:
		st := report.StatusFail
		if !r.RequireTLS && !outbound {
			st = report.StatusWarn // asked to stop at "tls" on an MX: opportunistic TLS still delivers
		}
		set(st, fmt.Sprintf("%s does not offer STARTTLS and TLS is required: nothing was sent", who),
			"Enable STARTTLS (RFC 3207) with a valid certificate on the server.")
	case r.ErrKind == KindUntrusted:
		set(report.StatusFail, fmt.Sprintf("TLS is required but %s; no credentials and no mail were sent", trimPhase(r.Err)),
			"Give the server a certificate for its name from a public CA, with its intermediates; for a private CA add it with --ca-file. --insecure-skip-verify only to test.")
	case r.ErrKind == KindUnsupported:
		set(report.StatusFail, fmt.Sprintf("%s: %s", who, trimPhase(r.Err)),
			"Enable SMTP AUTH (PLAIN or LOGIN) after STARTTLS on the submission service, or use a mechanism it offers.")
	case r.ErrKind == KindTLS:
		set(report.StatusFail, fmt.Sprintf("%s: %s; nothing was sent", who, trimPhase(r.Err)),
			"Check the server's TLS setup: certificate and key, and TLS 1.2 or 1.3 enabled (mfcheck sends with TLS 1.2 at least, RFC 8996).")
	case r.ErrKind == KindReply:
		set(report.StatusError, fmt.Sprintf("Could not send: %s gave an unexpected reply at %s: %s", who, stageWord(r.Failed), r.replyOrErr()), "")
	case r.Failed == StageData:
		set(report.StatusError, fmt.Sprintf("Could not finish the send to %s: %s", who, trimPhase(r.Err)),
			"Look for the token in the recipient's mailbox; if it is not there, run the test again. A server that drops connections during DATA may be overloaded or limit message size.")
	default:
		set(report.StatusError, r.unreached("Could not send"),
			"Check that the servers are reachable on port 25 (or the submission port) from where mfcheck runs; client networks often block outbound port 25.")
	}
}

func (r *SendResult) bypassFinding(f *report.Finding) {
	set := func(st report.Status, msg, fix string) { f.Status, f.Message, f.Remediation = st, msg, fix }
	who := r.subject()
	rcpt := strings.Join(r.To, ", ")
	switch {
	case r.ErrKind == KindInvalid:
		set(report.StatusError, "Could not test direct delivery: "+trimPhase(r.Err), "Give a recipient address at the domain and the mailbox platform's endpoint.")
	case r.Accepted:
		set(report.StatusFail,
			fmt.Sprintf("Direct delivery is open: %s accepted RCPT TO:<%s> from mfcheck's address, not from the gateway, so mail can skip the gateway's filtering (tested up to RCPT; DATA was not sent)", who, rcpt),
			"Lock the mailbox platform down to the gateway. In Exchange Online: an inbound connector from your partner organisation (the gateway), for all sender domains (*), that rejects mail not sent from the gateway's IP addresses (RestrictDomainsToIPAddresses) or without its TLS certificate name (RestrictDomainsToCertificate); or a mail flow rule that rejects external mail whose sender IP is outside the gateway's ranges. Then run this test again; a lock-down that only rejects after DATA does not show here.")
	case r.ErrKind == KindReply && r.Code/100 == 5:
		set(report.StatusPass,
			fmt.Sprintf("Direct delivery is refused: %s answered %s with %s", who, stageWord(r.Failed), r.replyOrErr()), "")
	case r.ErrKind == KindReply && r.Code/100 == 4:
		set(report.StatusWarn,
			fmt.Sprintf("Inconclusive: %s answered %s with a temporary failure, %s", who, stageWord(r.Failed), r.replyOrErr()),
			"Run the test again later: a 4xx (greylisting, rate limits) says neither yes nor no.")
	default:
		set(report.StatusError, r.unreached("Could not test direct delivery"),
			"Run from a host that can reach port 25 of the mailbox platform's endpoint (client networks often block it).")
	}
}

// unreached describes a send that could not be carried out.
func (r *SendResult) unreached(lead string) string {
	if len(r.Attempts) > 1 {
		var parts []string
		for _, a := range r.Attempts {
			parts = append(parts, a.Subject+": "+trimPhase(a.Err))
		}
		return fmt.Sprintf("%s: none of %d servers could be used (%s)", lead, len(r.Attempts), strings.Join(parts, "; "))
	}
	return fmt.Sprintf("%s to %s: %s", lead, r.subject(), trimPhase(r.Err))
}

// refusal describes a 5xx.
func (r *SendResult) refusal(who string) string {
	switch r.Failed {
	case StageAuth:
		return fmt.Sprintf("Authentication as %s refused by %s: %s", r.authUser(), who, r.replyOrErr())
	case StageRcpt:
		return fmt.Sprintf("RCPT refused by %s: %s", who, trimPhase(r.Err))
	case StageData:
		return fmt.Sprintf("%s refused the message after DATA: %s", who, r.replyOrErr())
	}
	return fmt.Sprintf("%s refused %s: %s", who, stageWord(r.Failed), r.replyOrErr())
}

func (r *SendResult) refusalFix(outbound bool, doms string) string {
	switch r.Failed {
	case StageAuth:
		return "Check the user name and password, and that the account may use SMTP AUTH (Exchange Online turns it off per mailbox and per organisation)."
	case StageRcpt:
		if outbound {
			return "The smart host does not relay for this sender: authorise the sending IP address or authenticate, and register the sender's domain with it."
		}
		return "The server does not accept mail for " + doms + ": register the domain (and its delivery route to the mailbox platform) with the gateway, and check that the recipient exists."
	case StageMail:
		return "The sender is refused: use a sender address at a domain the server accepts (and whose SPF authorises mfcheck's address where that is checked)."
	case StageData:
		return "The message was refused on content or authentication (DMARC, SPF, size, policy): the reply says which; check the gateway's policies for the sender."
	case StageBanner:
		return "The server refuses connections from mfcheck's address (a blocklist, or a firewall rule): run from an allowed address, or allow it."
	}
	return "See the server's reply; its log has the details."
}

func (r *SendResult) authUser() string {
	if r.AuthUser != "" {
		return r.AuthUser
	}
	return "the given user"
}

// stageAccepted is the pass message with QuitAfter.
func (r *SendResult) stageAccepted(who, doms string) string {
	switch r.QuitAfter {
	case StageRcpt:
		return fmt.Sprintf("RCPT accepted: %s accepts mail for %s", who, doms)
	case StageMail:
		return fmt.Sprintf("MAIL accepted: %s accepts the sender %s", who, orNull(r.From))
	case StageAuth:
		return fmt.Sprintf("AUTH accepted by %s (%s)", who, r.AuthMechanism)
	case StageStartTLS:
		return fmt.Sprintf("TLS works with %s", who)
	case StageEHLO:
		return fmt.Sprintf("EHLO accepted by %s", who)
	case StageConnect:
		return fmt.Sprintf("%s greets: %s", who, r.Reply)
	}
	return "Accepted by " + who
}

func (r *SendResult) tlsPhrase() string {
	if !r.TLSUsed || r.TLS == nil {
		if r.TLSError != "" {
			return "without TLS (" + r.TLSError + ")"
		}
		if r.QuitAfter == StageConnect {
			return "(before TLS)"
		}
		return "without TLS"
	}
	s := "over " + r.TLS.Version
	switch {
	case r.TLS.Verified:
		s += ", certificate verified"
	case r.InsecureSkipVerify:
		s += ", certificate NOT verified (verification turned off)"
	default:
		s += ", certificate not verified: " + r.TLS.VerifyError
	}
	return s
}

func (r *SendResult) replyOrErr() string {
	if r.Reply != "" {
		return r.Reply
	}
	return trimPhase(r.Err)
}

// domains lists the recipients' domains, once each.
func (r *SendResult) domains() string {
	var ds []string
	for _, to := range r.To {
		if i := strings.LastIndexByte(to, '@'); i >= 0 {
			if d := strings.ToLower(to[i+1:]); !slices.Contains(ds, d) {
				ds = append(ds, d)
			}
		}
	}
	if len(ds) == 0 {
		return "the recipients"
	}
	return strings.Join(ds, ", ")
}

func stageWord(st Stage) string {
	switch st {
	case StageMail:
		return "MAIL FROM"
	case StageRcpt:
		return "RCPT TO"
	case StageEHLO:
		return "EHLO"
	case StageStartTLS:
		return "STARTTLS"
	case StageAuth:
		return "AUTH"
	case StageData:
		return "DATA"
	case StageBanner:
		return "the greeting"
	case StageConnect:
		return "connect"
	}
	return string(st)
}

func orNull(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

// evidence is the raw data of the send.
func (r *SendResult) evidence() map[string]any {
	ev := map[string]any{
		"path": string(r.Path), "phases_ms": r.PhaseMS(), "tls_used": r.TLSUsed, "tls_offered": r.TLSOffered,
		"require_tls": r.RequireTLS, "accepted": r.Accepted, "to": r.To, "from": orNull(r.From),
	}
	put := func(k, v string) {
		if v != "" {
			ev[k] = v
		}
	}
	put("stage", string(r.Stage))
	put("failed_stage", string(r.Failed))
	put("enhanced_code", r.EnhancedCode)
	put("reply", r.Reply)
	put("token", r.Token)
	put("queue_id", r.QueueID)
	put("auth_mechanism", r.AuthMechanism)
	put("tls_error", r.TLSError)
	put("error", r.Err)
	put("error_kind", r.ErrKind)
	put("quit_after", string(r.QuitAfter))
	if r.Code != 0 {
		ev["code"] = r.Code
	}
	if r.InsecureSkipVerify {
		ev["insecure_skip_verify"] = true
	}
	if len(r.Transcript) > 0 {
		ev["transcript"] = r.Transcript
	}
	var atts []map[string]any
	for _, a := range r.Attempts {
		m := map[string]any{"subject": a.Subject, "ms": a.MS, "tls_used": a.TLSUsed}
		if a.Stage != "" {
			m["stage"] = string(a.Stage)
		}
		if a.Failed != "" {
			m["failed_stage"] = string(a.Failed)
		}
		if a.Code != 0 {
			m["code"] = a.Code
		}
		if a.EnhancedCode != "" {
			m["enhanced_code"] = a.EnhancedCode
		}
		if a.Err != "" {
			m["error"], m["error_kind"] = a.Err, a.ErrKind
		}
		atts = append(atts, m)
	}
	if len(atts) > 0 {
		ev["attempts"] = atts
	}
	if t := r.TLS; t != nil {
		m := map[string]any{"version": t.Version, "cipher": t.Cipher, "verified": t.Verified}
		if t.VerifyError != "" {
			m["verify_error"] = t.VerifyError
		}
		if t.ServerName != "" {
			m["server_name"] = t.ServerName
		}
		if len(t.Chain) > 0 {
			m["leaf"] = t.Chain[0].Subject
			m["leaf_not_after"] = day(t.Chain[0].NotAfter)
		}
		ev["tls"] = m
	}
	return ev
}

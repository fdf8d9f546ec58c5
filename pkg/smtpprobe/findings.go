package smtpprobe

import (
	"crypto/tls"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// Finding IDs; docs/checks.md describes each.
const (
	IDConnect         = "tls.connect"
	IDBanner          = "tls.banner"
	IDStartTLSOffered = "tls.starttls-offered"
	IDHandshake       = "tls.handshake"
	IDVersion         = "tls.version"
	IDCertChain       = "tls.cert-chain"
	IDCertHostname    = "tls.cert-hostname"
	IDCertExpiry      = "tls.cert-expiry"
	IDCertKey         = "tls.cert-key"
	IDDANE            = "tls.dane"
)

// Findings judges the probe. o supplies ExpiryWarn (the other options were
// used by the probe itself). A probe that could not connect gives one
// tls.connect error and nothing else: a successful connect is not reported
// on its own (tls.banner carries its time), to keep one row per fact.
func (r *Result) Findings(o Options) []report.Finding {
	o = o.withDefaults()
	f := findings{r: r, o: o}
	f.run()
	return f.out
}

type findings struct {
	r   *Result
	o   Options
	out []report.Finding
}

func (f *findings) add(id string, st report.Status, msg, fix string, ev map[string]any) {
	f.out = append(f.out, report.Finding{ID: id, Status: st, Subject: f.r.Subject, Message: msg, Remediation: fix, Evidence: ev})
}

// session is the evidence every protocol-level finding carries. The
// transcript goes only where it explains something (a finding that is not
// a pass, and tls.handshake, the last protocol step), so one endpoint's
// few KB are not repeated in every finding.
func (f *findings) session(transcript bool) map[string]any {
	ev := map[string]any{"phases_ms": f.r.PhaseMS(), "address": f.r.Target.Addr.String(), "port": f.r.Target.port()}
	if f.r.Target.Role != "" {
		ev["role"] = string(f.r.Target.Role)
	}
	if transcript && len(f.r.Transcript) > 0 {
		ev["transcript"] = f.r.Transcript
	}
	if f.r.Err != "" {
		ev["error"] = f.r.Err
	}
	return ev
}

func (f *findings) run() {
	r := f.r
	if r.ErrPhase == PhaseConnect {
		f.add(IDConnect, report.StatusError,
			fmt.Sprintf("Could not connect to port %d: %s", r.Target.port(), strings.TrimPrefix(r.Err, "connect: ")),
			"Check that the address is right and that port "+fmt.Sprint(r.Target.port())+" is reachable from where mfcheck runs (outbound port 25 is often blocked on client networks).",
			f.session(true))
		return
	}
	if r.Target.ImplicitTLS {
		// The handshake comes first (RFC 8314 §3.3), so the certificate
		// can be judged whatever the greeting says.
		if !f.handshake() {
			return
		}
		f.banner()
	} else if !f.banner() || !f.startTLS() || !f.handshake() {
		return
	}
	f.version()
	f.chain()
	f.hostname()
	f.expiry()
	f.key()
}

// banner reports the greeting and whether the session went on.
func (f *findings) banner() bool {
	r := f.r
	ev := f.session(r.Banner == nil || r.Banner.Code != 220)
	if r.Banner == nil {
		what := "did not greet"
		if r.ErrKind == KindGarbage || r.ErrKind == KindTooLong {
			what = "sent no valid greeting"
		}
		f.add(IDBanner, report.StatusError,
			fmt.Sprintf("Could not check: the server accepted the connection but %s: %s", what, trimPhase(r.Err)),
			"Check the server's SMTP service; a server that accepts TCP but never greets makes senders wait and retry.", ev)
		return false
	}
	ev["banner"] = r.Banner.String()
	switch c := r.Banner.Code; {
	case c == 220:
		f.add(IDBanner, report.StatusPass, "Greeting: "+r.Banner.String(), "", ev)
		return true
	case c == 421 || c/100 == 4:
		f.add(IDBanner, report.StatusWarn,
			fmt.Sprintf("The server refuses service for now: %s (senders retry later; RFC 5321 §3.8)", r.Banner),
			"If the server is overloaded or in maintenance, fix that; if it limits or blocks the address mfcheck ran from, run from an allowed address.", ev)
	case c == 554 || c/100 == 5:
		f.add(IDBanner, report.StatusFail,
			fmt.Sprintf("The server refuses SMTP: %s (RFC 5321 §3.1: no service here)", r.Banner),
			"Enable the SMTP service for this address, or, if it blocks the address mfcheck ran from (a blocklist), check from an address it accepts.", ev)
	default:
		f.add(IDBanner, report.StatusWarn,
			fmt.Sprintf("Unexpected greeting %s: RFC 5321 §4.3.1 allows only 220 or 554", r.Banner),
			"Make the server greet with 220.", ev)
	}
	return false
}

// startTLS reports whether STARTTLS was offered and whether to go on.
func (f *findings) startTLS() bool {
	r := f.r
	ev := f.session(!r.StartTLSOffered)
	if len(r.Extensions) > 0 {
		ev["extensions"] = r.Extensions
	}
	if r.EHLO == nil {
		f.add(IDStartTLSOffered, report.StatusError,
			"Could not check whether STARTTLS is offered: "+trimPhase(r.Err), "", ev)
		return false
	}
	if r.StartTLSOffered {
		f.add(IDStartTLSOffered, report.StatusPass,
			"STARTTLS offered; extensions: "+strings.Join(r.Extensions, ", "), "", ev)
		return true
	}
	why := "the EHLO reply does not list STARTTLS"
	if r.HELOFallback {
		why = "the server refused EHLO and only HELO worked, which has no extensions"
	}
	if r.Target.Role == RoleSmartHost {
		f.add(IDStartTLSOffered, report.StatusFail,
			fmt.Sprintf("No STARTTLS: %s; a connector set to always use TLS (the usual setting towards a gateway) cannot deliver, so mail queues and then bounces", why),
			"Enable STARTTLS on the smart host with a certificate for "+nameOr(r.Target)+" from a public CA, or point the connector at a smart host that offers it.", ev)
	} else {
		f.add(IDStartTLSOffered, report.StatusWarn,
			fmt.Sprintf("No STARTTLS: %s; senders fall back to plaintext (RFC 3207 §4) and MTA-STS or DANE senders will not deliver", why),
			"Enable STARTTLS on the MX with a certificate for "+nameOr(r.Target)+" (Postfix: smtpd_tls_security_level = may plus smtpd_tls_chain_files).", ev)
	}
	return false
}

// handshake reports the STARTTLS command and the TLS handshake.
func (f *findings) handshake() bool {
	r := f.r
	ev := f.session(true)
	if r.StartTLSReply != nil {
		ev["starttls_reply"] = r.StartTLSReply.String()
	}
	if r.TLS != nil {
		ev["version"], ev["cipher"] = r.TLS.Version, r.TLS.Cipher
		if r.ErrPhase == PhaseEHLOTLS {
			f.add(IDHandshake, report.StatusWarn,
				fmt.Sprintf("TLS handshake completed (%s), but then the session broke: %s", r.TLS.Version, trimPhase(r.Err)),
				"Check the server's logs for errors after STARTTLS; senders will retry and may give up.", ev)
			return true
		}
		f.add(IDHandshake, report.StatusPass, fmt.Sprintf("TLS handshake completed: %s, %s", r.TLS.Version, r.TLS.Cipher), "", ev)
		return true
	}
	lead := "STARTTLS is offered but the TLS handshake failed"
	if r.Target.ImplicitTLS {
		lead = "The implicit-TLS handshake failed (RFC 8314 §3.3)"
	}
	switch {
	case r.ErrPhase != PhaseStartTLS && r.ErrPhase != PhaseHandshake:
		f.add(IDHandshake, report.StatusError, "Could not check the TLS handshake: "+trimPhase(r.Err), "", ev)
	case r.ErrKind == KindTimeout || r.ErrKind == KindCanceled:
		f.add(IDHandshake, report.StatusError, "Could not check the TLS handshake: "+trimPhase(r.Err),
			"Retry; if it persists, the server hangs after STARTTLS, which makes senders time out.", ev)
	case r.ErrPhase == PhaseStartTLS && r.ErrKind == KindReply:
		f.add(IDHandshake, report.StatusFail,
			fmt.Sprintf("%s: the server answered STARTTLS with %s", "STARTTLS is offered but refused", r.StartTLSReply),
			"Fix the TLS setup (certificate and key files, permissions) so that STARTTLS answers 220, or stop announcing STARTTLS.", ev)
	default:
		f.add(IDHandshake, report.StatusFail,
			fmt.Sprintf("%s: %s", lead, trimPhase(r.Err)),
			"Check the server's TLS configuration: certificate and key files, protocol versions and cipher suites (a client offering TLS 1.0 to 1.3 with every Go cipher suite could not connect).", ev)
	}
	return false
}

func (f *findings) version() {
	s := f.r.TLS
	ev := map[string]any{"version": s.Version, "cipher": s.Cipher}
	var problems []string
	if s.VersionID < 0x0303 {
		problems = append(problems, fmt.Sprintf("%s is deprecated (RFC 8996) and many senders (Exchange Online among them) no longer use it", s.Version))
	}
	if why := weakCipher(s.CipherID, s.Cipher); why != "" {
		problems = append(problems, s.Cipher+" "+why)
	}
	if len(problems) > 0 {
		f.add(IDVersion, report.StatusWarn,
			fmt.Sprintf("Negotiated %s with %s, the best the server offered to a client allowing TLS 1.0 to 1.3: %s", s.Version, s.Cipher, strings.Join(problems, "; ")),
			"Enable TLS 1.2 and 1.3 with ECDHE and AEAD (GCM, ChaCha20) suites (Postfix: smtpd_tls_protocols = >=TLSv1.2; Exchange: enable TLS 1.2 in Schannel).", ev)
		return
	}
	f.add(IDVersion, report.StatusPass, fmt.Sprintf("Negotiated %s with %s", s.Version, s.Cipher), "", ev)
}

func (f *findings) chain() {
	s, host := f.r.TLS, nameOr(f.r.Target)
	ev := map[string]any{"chain": chainSummary(s), "verified": s.Verified}
	if s.ChainError != "" {
		ev["error"] = s.ChainError
	}
	if s.ChainTrusted {
		msg := "The chain leads to a trusted root: " + strings.Join(s.VerifiedChain, " <- ")
		if !s.Verified && s.VerifyError != "" {
			msg += " (dates and name are judged by tls.cert-expiry and tls.cert-hostname)"
		}
		ev["verified_chain"] = s.VerifiedChain
		f.add(IDCertChain, report.StatusPass, msg, "", ev)
		return
	}
	leaf := ""
	if len(s.Chain) > 0 {
		leaf = s.Chain[0].Subject
	}
	var msg, fix string
	switch s.ChainProblem {
	case ChainSelfSigned:
		msg = fmt.Sprintf("The certificate is self-signed (%s): no sender can verify it, and MTA-STS senders and connectors that validate certificates will not deliver", leaf)
		fix = fmt.Sprintf("Install a certificate for %s from a public CA (for example Let's Encrypt) with its intermediates.", host)
	case ChainMissingIntermediate:
		ev["missing_issuer"] = s.MissingIssuer
		sent := fmt.Sprintf("the server sent %d certificate(s)", len(s.Chain))
		msg = fmt.Sprintf("Missing intermediate: the chain stops at %q, the issuer of %q, which the server did not send and which is not a trusted root (%s)", s.MissingIssuer, s.StopsAt, sent)
		fix = fmt.Sprintf("Install the intermediate certificate %q (the issuer of %q) in the server's chain file, after the leaf; if it belongs to a private CA, give its root to mfcheck with --ca-file.", s.MissingIssuer, s.StopsAt)
	case ChainUnknownAuthority:
		msg = fmt.Sprintf("The chain ends at %q, a root that is not trusted", s.MissingIssuer)
		fix = fmt.Sprintf("Use a certificate for %s from a public CA; for a private CA, give its root to mfcheck with --ca-file.", host)
	case ChainWeakSignature:
		msg = fmt.Sprintf("%q is signed with a weak algorithm (SHA-1 or MD5), which TLS clients reject", s.WeakSigned)
		fix = "Reissue the certificate (and any intermediate concerned) with a SHA-256 signature."
	default:
		msg = "The chain does not verify: " + s.ChainError
		fix = "Reissue the certificate from a public CA and install it with its intermediates."
	}
	ev["problem"] = string(s.ChainProblem)
	f.add(IDCertChain, report.StatusFail, msg, fix, ev)
}

func (f *findings) hostname() {
	s, t := f.r.TLS, f.r.Target
	names := certNames(s)
	ev := map[string]any{"names": names}
	if !s.HostnameChecked {
		f.add(IDCertHostname, report.StatusInfo,
			fmt.Sprintf("No host name for this address, so the name was not checked; the certificate names %s", listOr(names)), "", ev)
		return
	}
	ev["host"] = hostForName(t)
	if s.HostnameOK {
		f.add(IDCertHostname, report.StatusPass,
			fmt.Sprintf("The certificate is valid for %s (it names %s)", hostForName(t), listOr(names)), "", ev)
		return
	}
	msg := fmt.Sprintf("The certificate is not valid for %s: it names %s", hostForName(t), listOr(names))
	if len(s.Chain) > 0 && len(s.Chain[0].DNSNames) == 0 && len(s.Chain[0].IPs) == 0 {
		msg += " (no subjectAltName; the CN is not used for matching, RFC 6125 §6.4.4)"
	}
	f.add(IDCertHostname, report.StatusFail, msg,
		fmt.Sprintf("Install a certificate whose subjectAltName includes %s, or point the %s at a name the certificate has.", hostForName(t), roleNoun(t.Role)), ev)
}

func (f *findings) expiry() {
	s := f.r.TLS
	now := s.CheckedAt
	type bad struct {
		subject string
		st      report.Status
		msg     string
	}
	var worst *bad
	soonest := -1
	for i, c := range s.Chain {
		if i > 0 && c.SelfSigned {
			continue // a root sent along is not used by clients
		}
		var b *bad
		switch {
		case now.After(c.NotAfter):
			b = &bad{c.Subject, report.StatusFail, fmt.Sprintf("%q expired on %s, %d days ago", c.Subject, day(c.NotAfter), daysBetween(c.NotAfter, now))}
		case now.Before(c.NotBefore):
			b = &bad{c.Subject, report.StatusFail, fmt.Sprintf("%q is not valid before %s (in %d days)", c.Subject, day(c.NotBefore), daysBetween(now, c.NotBefore))}
		}
		if b != nil && (worst == nil || i == 0) {
			worst = b
		}
		if soonest < 0 || c.NotAfter.Before(s.Chain[soonest].NotAfter) {
			soonest = i
		}
	}
	if worst == nil && s.ExpiredInChain != "" {
		worst = &bad{s.ExpiredInChain, report.StatusFail, fmt.Sprintf("%q, a root the chain needs, is outside its validity", s.ExpiredInChain)}
	}
	if soonest < 0 {
		return
	}
	c := s.Chain[soonest]
	left := daysBetween(now, c.NotAfter)
	ev := map[string]any{"not_before": c.NotBefore, "not_after": c.NotAfter, "subject": c.Subject, "checked_at": now}
	switch {
	case worst != nil:
		f.add(IDCertExpiry, report.StatusFail, "Certificate outside its validity: "+worst.msg+"; senders that verify certificates will not deliver",
			"Renew the certificate and install it (with its intermediates), then reload the server.", ev)
	case c.NotAfter.Sub(now) < f.o.ExpiryWarn:
		ev["days_left"] = left
		f.add(IDCertExpiry, report.StatusWarn, fmt.Sprintf("%q expires in %d days, on %s", c.Subject, left, day(c.NotAfter)),
			"Renew the certificate now; check that automatic renewal works and that the server reloads it.", ev)
	default:
		ev["days_left"] = left
		f.add(IDCertExpiry, report.StatusPass, fmt.Sprintf("Valid until %s, %d days left", day(c.NotAfter), left), "", ev)
	}
}

func (f *findings) key() {
	s := f.r.TLS
	var weak []string
	for i, c := range s.Chain {
		if i > 0 && c.SelfSigned {
			continue
		}
		if why := weakKey(c); why != "" {
			weak = append(weak, fmt.Sprintf("%q has %s", c.Subject, why))
		}
	}
	if len(s.Chain) == 0 {
		return
	}
	ev := map[string]any{"key_type": s.Chain[0].KeyType}
	if len(weak) > 0 {
		f.add(IDCertKey, report.StatusWarn, "Weak key: "+strings.Join(weak, "; "),
			"Reissue the certificate with an ECDSA P-256 or RSA 2048 (or larger) key.", ev)
		return
	}
	f.add(IDCertKey, report.StatusPass, "Key: "+s.Chain[0].KeyType, "", ev)
}

// weakCipher says what is wrong with a suite, or "". Go lists RC4, 3DES
// and the CBC-SHA256 suites as insecure; a suite without ECDHE has no
// forward secrecy (RFC 9325 §4.1 asks for it).
func weakCipher(id uint16, name string) string {
	if strings.HasPrefix(name, "TLS_RSA_") {
		return "uses RSA key exchange, without forward secrecy"
	}
	for _, c := range insecureSuites {
		if c == id {
			return "is an insecure cipher suite (RC4, 3DES or CBC with SHA-256)"
		}
	}
	return ""
}

var insecureSuites = func() []uint16 {
	var ids []uint16
	for _, c := range tls.InsecureCipherSuites() {
		ids = append(ids, c.ID)
	}
	return ids
}()

func chainSummary(s *TLSState) []map[string]any {
	out := make([]map[string]any, len(s.Chain))
	for i, c := range s.Chain {
		out[i] = map[string]any{
			"subject": c.Subject, "issuer": c.Issuer, "not_after": c.NotAfter,
			"key": c.KeyType, "signature": c.SignatureAlgorithm, "sha256": c.SHA256,
		}
		if c.SelfSigned {
			out[i]["self_signed"] = true
		}
	}
	return out
}

func certNames(s *TLSState) []string {
	if len(s.Chain) == 0 {
		return nil
	}
	c := s.Chain[0]
	return append(append([]string{}, c.DNSNames...), c.IPs...)
}

func listOr(names []string) string {
	if len(names) == 0 {
		return "no names"
	}
	return strings.Join(names, ", ")
}

func nameOr(t Target) string {
	if t.Host != "" {
		return hostForName(t)
	}
	return t.Addr.String()
}

func roleNoun(r Role) string {
	if r == RoleSmartHost {
		return "connector"
	}
	return "MX record"
}

// trimPhase drops the "phase: " prefix of Result.Err for messages that say
// the phase themselves.
func trimPhase(s string) string {
	if i := strings.Index(s, ": "); i > 0 && !strings.Contains(s[:i], " ") {
		return s[i+2:]
	}
	return s
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// daysBetween is the whole days from a to b (floor; never negative for a<=b).
func daysBetween(a, b time.Time) int { return int(math.Floor(b.Sub(a).Hours() / 24)) }

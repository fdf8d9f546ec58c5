package check

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/smtpprobe"
)

// SendConfig is the test-message part of a run (`check --send`, `send`).
// Recipients are only those the user named: mfcheck never picks one.
type SendConfig struct {
	// Inbound sends a message to To through the domain's MX hosts (or
	// InboundServer), in preference order with fallback (send.inbound).
	Inbound       bool
	To            []string
	From          string
	InboundServer *HostPort

	// Outbound submits a message to OutboundTo through OutboundServer
	// (send.outbound): the gateway's smart host or a submission server.
	OutboundServer *HostPort
	OutboundTo     []string
	Auth           *smtpprobe.Auth

	// Bypass tries MAIL FROM/RCPT TO for To[0] directly at the mailbox
	// platform's endpoint, never DATA (bypass.direct-delivery). BypassHost
	// is the endpoint; nil lets the run find it (see bypassPlan).
	Bypass     bool
	BypassHost *HostPort

	// QuitAfter stops every send at that stage (readiness: "is the mail
	// accepted?" without sending one).
	QuitAfter smtpprobe.Stage
	// DKIM signs the messages.
	DKIM *smtpprobe.DKIMSigner
	// InsecureSkipVerify accepts any certificate where one is required.
	InsecureSkipVerify bool
	// Maildir is where the inbound test message lands (a mailbox the user
	// can read); when set, the run waits for it and traces it.
	Maildir string
}

// sendOptions are the smtpprobe options shared by every send of a run.
func (c SMTPConfig) sendOptions(path smtpprobe.SendPath, s SendConfig) smtpprobe.SendOptions {
	return smtpprobe.SendOptions{
		Path: path, HeloName: c.HeloName, Roots: c.Roots, Timeouts: c.Timeouts,
		InsecureSkipVerify: s.InsecureSkipVerify, QuitAfter: s.QuitAfter, From: s.From,
	}
}

// message builds a test message with a fresh token.
func message(s SendConfig, to []string, now time.Time) ([]byte, string, error) {
	token := smtpprobe.NewToken()
	host := "mfcheck.invalid"
	if a, err := mail.ParseAddress(s.From); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			host = a.Address[i+1:]
		}
	}
	msg, err := smtpprobe.BuildMessage(smtpprobe.MessageOptions{From: s.From, To: to, Token: token, Date: now, Hostname: host, DKIM: s.DKIM})
	return msg, token, err
}

// sendFinding runs one send and turns it into its finding. A message that
// cannot be built (a bad DKIM key) is an error finding: nothing was sent.
func sendFinding(ctx context.Context, o smtpprobe.SendOptions, targets []smtpprobe.Target, s SendConfig, now time.Time) report.Finding {
	o.Targets, o.To = targets, s.To
	if o.Path == smtpprobe.PathOutbound {
		o.To, o.Auth = s.OutboundTo, s.Auth
	}
	if o.QuitAfter == "" {
		msg, _, err := message(s, o.To, now)
		if err != nil {
			return report.Finding{ID: "send." + string(o.Path), Status: report.StatusError, Subject: strings.Join(o.To, ", "),
				Message: "Could not build the test message: " + err.Error()}
		}
		o.Message = msg
	}
	return smtpprobe.Send(ctx, o).Finding()
}

// bypassPlan finds the endpoint for the bypass test: the one given; else an
// MX host of the domain that belongs to the mailbox platform (before the
// cutover, or left over); else, for Microsoft 365, the tenant endpoint its
// naming convention gives (contoso.com -> contoso-com.mail.protection.outlook.com),
// marked as derived. nil when none is known.
func bypassPlan(s SendConfig, domain string, mxRes *mx.Result, mailbox *profile.Profile) (*HostPort, string) {
	if s.BypassHost != nil {
		return s.BypassHost, "given with --bypass-host"
	}
	if mxRes != nil && mailbox != nil {
		for _, h := range mxRes.Hosts {
			if h.Platform == mailbox.ID {
				return &HostPort{Host: strings.TrimSuffix(h.Name, ".")}, "an MX host of " + domain + " at " + mailbox.Name
			}
		}
	}
	if mailbox != nil && strings.HasPrefix(mailbox.ID, "microsoft365") {
		host := strings.ReplaceAll(domain, ".", "-") + ".mail.protection.outlook.com"
		return &HostPort{Host: host}, "derived from Microsoft 365's naming convention (confirm the tenant's MX endpoint in the Exchange admin center, or give --bypass-host)"
	}
	return nil, ""
}

// sendFindings runs the sends a check asked for, concurrently: inbound
// through the MX hosts, outbound through the submission server, and the
// bypass test at the platform endpoint.
func sendFindings(ctx context.Context, r mx.Resolver, cfg Config, mxRes *mx.Result, mailbox *profile.Profile, now time.Time) []report.Finding {
	s, smtpCfg := cfg.Send, cfg.SMTP
	smtpCfg.Roots = cfg.Roots
	var out []report.Finding
	type job func() []report.Finding
	var jobs []job
	if s.Inbound {
		jobs = append(jobs, func() []report.Finding {
			targets := mxTargets(mxRes, smtpCfg.Port)
			var fs []report.Finding
			if s.InboundServer != nil {
				targets, fs = resolveEndpoints(ctx, r, []endpointPlan{{host: *s.InboundServer, role: smtpprobe.RoleMX}}, orPort(smtpCfg.Port))
			}
			if len(targets) == 0 && len(fs) == 0 {
				return []report.Finding{{ID: "send.inbound", Status: report.StatusError, Subject: strings.Join(s.To, ", "),
					Message: "No MX address to send to: see the mx findings"}}
			}
			return append(fs, sendFinding(ctx, smtpCfg.sendOptions(smtpprobe.PathInbound, s), targets, s, now))
		})
	}
	if s.OutboundServer != nil {
		jobs = append(jobs, func() []report.Finding {
			targets, fs := resolveEndpoints(ctx, r, []endpointPlan{{host: *s.OutboundServer, role: smtpprobe.RoleSmartHost}}, orPort(smtpCfg.Port))
			if len(targets) == 0 {
				return fs
			}
			return append(fs, sendFinding(ctx, smtpCfg.sendOptions(smtpprobe.PathOutbound, s), targets, s, now))
		})
	}
	if s.Bypass {
		jobs = append(jobs, func() []report.Finding {
			host, why := bypassPlan(s, cfg.Domain, mxRes, mailbox)
			if host == nil {
				return []report.Finding{{ID: "bypass.direct-delivery", Status: report.StatusInfo, Subject: cfg.Domain,
					Message:     "Bypass test not run: the mailbox platform's endpoint is unknown",
					Remediation: "Give the platform's inbound endpoint with --bypass-host (for Microsoft 365, the tenant's <domain>.mail.protection.outlook.com host)."}}
			}
			targets, fs := resolveEndpoints(ctx, r, []endpointPlan{{host: *host, role: smtpprobe.RoleMX}}, orPort(smtpCfg.Port))
			if len(targets) == 0 {
				return fs
			}
			f := smtpprobe.Bypass(ctx, targets, s.From, s.To[0], smtpCfg.sendOptions(smtpprobe.PathBypass, s)).Finding()
			if f.Evidence == nil {
				f.Evidence = map[string]any{}
			}
			f.Evidence["endpoint_source"] = why
			if cfg.Mode == mx.ModeReadiness && f.Status == report.StatusFail {
				// Before the MX change the platform must still take direct
				// mail: locking it down now would bounce everything.
				f.Status = report.StatusInfo
				f.Message = "Expected before the cutover: " + f.Message + "; lock it down right after the MX change, then rerun in smoke mode"
			}
			return append(fs, f)
		})
	}
	results := make([][]report.Finding, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { results[i] = j() })
	}
	wg.Wait()
	for _, fs := range results {
		out = append(out, fs...)
	}
	return out
}

// any reports whether the run sends anything.
func (s SendConfig) any() bool { return s.Inbound || s.OutboundServer != nil || s.Bypass }

// SendRun is a run of `mfcheck send`: one path, one message (or one
// acceptance test with QuitAfter).
type SendRun struct {
	Path smtpprobe.SendPath
	// Server is where to send; for the inbound path nil means the MX hosts
	// of the recipients' domain.
	Server  *HostPort
	Send    SendConfig
	SMTP    SMTPConfig
	Roots   *x509.CertPool
	Mode    string
	Trace   bool
	Version string
}

// RunSend sends one test message (or runs the bypass test) and returns the
// finalized report, named after the recipients' domain.
func RunSend(ctx context.Context, cfg SendRun, deps Deps) *report.Report {
	now := deps.clock()
	start := now()
	to := cfg.Send.To
	if cfg.Path == smtpprobe.PathOutbound {
		to = cfg.Send.OutboundTo
	}
	domain := ""
	if len(to) > 0 {
		domain = to[0][strings.LastIndexByte(to[0], '@')+1:]
	}
	rep := newReport(domain, cfg.Mode, cfg.Version, start)

	smtpCfg := cfg.SMTP
	smtpCfg.Roots = cfg.Roots
	run := Config{Domain: domain, SMTP: smtpCfg, Roots: cfg.Roots, Send: cfg.Send}
	run.Send.Inbound, run.Send.Bypass, run.Send.OutboundServer = false, false, nil
	var mxRes *mx.Result
	switch cfg.Path {
	case smtpprobe.PathInbound:
		run.Send.Inbound, run.Send.InboundServer = true, cfg.Server
		if cfg.Server == nil {
			// Only the targets are needed; the propagation check is mfcheck mx's.
			mxRes = mx.Analyze(ctx, deps.DNS, domain, mx.Options{SkipNSConsistency: true})
			for _, f := range mxRes.Findings {
				if f.Status == report.StatusFail || f.Status == report.StatusError {
					rep.Add(f) // why there is nowhere to send
				}
			}
		}
	case smtpprobe.PathOutbound:
		run.Send.OutboundServer = cfg.Server
	case smtpprobe.PathBypass:
		run.Send.Bypass, run.Send.BypassHost = true, cfg.Server
	}
	rep.Add(sendFindings(ctx, deps.DNS, run, mxRes, nil, now())...)
	return finish(rep, start, now, deps.DNS, cfg.Trace)
}

func orPort(p int) int {
	if p == 0 {
		return 25
	}
	return p
}

// Validate checks a SendConfig for domain before anything is sent.
func (s SendConfig) Validate(domain string) error {
	if len(s.To) == 0 && (s.Inbound || s.Bypass) {
		return fmt.Errorf("--send needs --to: the recipient of the test message")
	}
	if s.Bypass && len(s.To) > 0 && domain != "" && !strings.HasSuffix(strings.ToLower(s.To[0]), "@"+strings.ToLower(domain)) {
		return fmt.Errorf("the bypass test needs a recipient in %s, got %s", domain, s.To[0])
	}
	return nil
}

package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mfcheck/mfcheck/pkg/msgtrace"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/smtpprobe"
)

// What each mode adds to the checks every run makes (DESIGN.md, the three
// jobs). None of these sends a message unless the user asked (--send):
//
//	readiness  the gateway's inbound hosts already accept mail for the
//	           domain: RCPT TO probe, never DATA (send.gateway-accepts)
//	smoke      direct delivery to the mailbox platform is refused: the
//	           bypass test, RCPT only (bypass.direct-delivery); the inbound
//	           test message is reported as not sent without --send --to;
//	           with --maildir the message is traced when it arrives
//	health     nothing that needs a connection beyond the probes
//
// The recipient of the RCPT-only tests is the first --to, else the
// domain's postmaster, which every domain must accept (RFC 5321 §4.5.1).

// IDGatewayAccepts is the readiness probe of the gateway's inbound hosts.
const IDGatewayAccepts = "send.gateway-accepts"

// probeRecipient is the recipient of the RCPT-only tests.
func probeRecipient(s SendConfig, domain string) string {
	if len(s.To) > 0 {
		return s.To[0]
	}
	return "postmaster@" + domain
}

// gatewayHostPlans are the profile's literal inbound hosts (patterns stand
// for customer-specific names and cannot be probed).
func gatewayHostPlans(p *profile.Profile) []endpointPlan {
	var out []endpointPlan
	for _, h := range p.MXHosts {
		if !strings.ContainsAny(h, "*<>?") {
			out = append(out, endpointPlan{host: HostPort{Host: h}, role: smtpprobe.RoleMX, fromProfile: p})
		}
	}
	return out
}

// gatewayAccepts asks each of the gateway's inbound hosts, before the MX
// points there, whether it accepts RCPT TO for the domain: "does the gateway
// know this domain yet?". One finding per host.
func gatewayAccepts(ctx context.Context, r mx.Resolver, cfg Config) []report.Finding {
	plans := gatewayHostPlans(cfg.Profile)
	if len(plans) == 0 {
		return []report.Finding{{ID: IDGatewayAccepts, Status: report.StatusInfo, Subject: cfg.Domain,
			Message: fmt.Sprintf("The %s profile names no literal inbound host to probe; check that the gateway accepts %s with mfcheck send --path inbound --quit-after rcpt --server HOST", cfg.Profile.ID, cfg.Domain)}}
	}
	smtpCfg := cfg.SMTP
	smtpCfg.Roots = cfg.Roots
	s := cfg.Send
	s.QuitAfter, s.To = smtpprobe.StageRcpt, []string{probeRecipient(cfg.Send, cfg.Domain)}
	out := make([][]report.Finding, len(plans))
	var wg sync.WaitGroup
	for i, p := range plans {
		wg.Go(func() {
			targets, fs := resolveEndpoints(ctx, r, []endpointPlan{p}, orPort(smtpCfg.Port))
			if len(targets) > 0 {
				f := sendFinding(ctx, smtpCfg.sendOptions(smtpprobe.PathInbound, s), targets, s, time.Now())
				f.ID = IDGatewayAccepts
				fs = append(fs, f)
			}
			out[i] = fs
		})
	}
	wg.Wait()
	var all []report.Finding
	for _, fs := range out {
		all = append(all, fs...)
	}
	return all
}

// modeSendConfig is cfg.Send with what the mode adds: smoke runs the
// bypass test (RCPT only) even without --send.
func modeSendConfig(cfg Config) SendConfig {
	s := cfg.Send
	if cfg.Mode == mx.ModeSmoke && !cfg.SMTP.Skip && cfg.Profile != nil && cfg.Profile.Kind == profile.KindGateway {
		s.Bypass = true
		if len(s.To) == 0 {
			s.To = []string{probeRecipient(s, cfg.Domain)}
		}
	}
	return s
}

// notSent says, in smoke mode, that the inbound test message was not sent
// and how to send it.
func notSent(cfg Config) []report.Finding {
	if cfg.Mode != mx.ModeSmoke || cfg.Send.Inbound {
		return nil
	}
	return []report.Finding{{ID: "send.inbound", Status: report.StatusInfo, Subject: cfg.Domain,
		Message:     "No test message was sent, so delivery through the gateway is not proven",
		Remediation: "Run the smoke test with --send --to <a mailbox of " + cfg.Domain + "> (and --maildir to trace it where it lands)."}}
}

// Maildir polling: Postfix and the gateways deliver asynchronously.
const (
	maildirPoll = 250 * time.Millisecond
	maildirWait = 60 * time.Second
)

// traceDelivered waits for the inbound test message (by its token) in the
// Maildir and traces it. Waiting is bounded by ctx and maildirWait.
func traceDelivered(ctx context.Context, r mx.Resolver, cfg Config, inbound report.Finding, mailbox *profile.Profile) []report.Finding {
	token, _ := inbound.Evidence["token"].(string)
	if token == "" || inbound.Status.AtLeast(report.StatusFail) || inbound.Status == report.StatusError {
		return nil
	}
	start := time.Now()
	deadline := start.Add(maildirWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		path, err := msgtrace.FindInMaildir(cfg.Send.Maildir, token)
		if err == nil {
			raw, err := os.ReadFile(path)
			if err != nil {
				return []report.Finding{{ID: "trace.message", Status: report.StatusError, Subject: path, Message: "Could not read the delivered test message: " + err.Error()}}
			}
			t := msgtrace.Analyze(ctx, raw, msgtrace.Options{Profile: cfg.Profile, Mailbox: mailbox, Resolver: r})
			return t.Findings
		}
		if !errors.Is(err, msgtrace.ErrNotFound) {
			return []report.Finding{{ID: "trace.message", Status: report.StatusError, Subject: cfg.Send.Maildir, Message: "Could not search the Maildir: " + err.Error()}}
		}
		if time.Now().Add(maildirPoll).After(deadline) {
			return []report.Finding{{ID: "trace.message", Status: report.StatusFail, Subject: cfg.Send.Maildir,
				Message:     fmt.Sprintf("The test message %s was accepted but has not arrived in %s after %s", token, cfg.Send.Maildir, time.Since(start).Round(time.Second)),
				Remediation: "Look for it in the gateway's message tracking (held, quarantined, or delayed) and in the mailbox platform's message trace.",
				Evidence:    map[string]any{"token": token, "maildir": cfg.Send.Maildir}}}
		}
		select {
		case <-ctx.Done():
			return []report.Finding{{ID: "trace.message", Status: report.StatusError, Subject: cfg.Send.Maildir, Message: "Stopped waiting for the test message: " + ctx.Err().Error()}}
		case <-time.After(maildirPoll):
		}
	}
}

// modeProbes reports whether the mode adds probes (or notes) of its own;
// modeFindings decides which, given --no-smtp and the profile.
func modeProbes(cfg Config) bool {
	return wants(cfg, AreaTLS) && (cfg.Mode == mx.ModeReadiness || cfg.Mode == mx.ModeSmoke)
}

// modeFindings runs the sends asked for plus the mode's own probes, and
// traces the inbound message when a Maildir is given.
func modeFindings(ctx context.Context, r mx.Resolver, cfg Config, mxRes *mx.Result, mailbox *profile.Profile, now time.Time) []report.Finding {
	run := cfg
	run.Send = modeSendConfig(cfg)
	var fs []report.Finding
	var accepts []report.Finding
	var wg sync.WaitGroup
	if cfg.Mode == mx.ModeReadiness && !cfg.SMTP.Skip && cfg.Profile != nil && cfg.Profile.Kind == profile.KindGateway {
		wg.Go(func() { accepts = gatewayAccepts(ctx, r, cfg) })
	}
	if run.Send.any() && !cfg.SMTP.Skip {
		fs = sendFindings(ctx, r, run, mxRes, mailbox, now)
	}
	wg.Wait()
	fs = append(fs, accepts...)
	fs = append(fs, notSent(cfg)...)
	if cfg.Send.Maildir != "" {
		for _, f := range fs {
			if f.ID == "send.inbound" && f.Status != report.StatusInfo {
				fs = append(fs, traceDelivered(ctx, r, cfg, f, mailbox)...)
				break
			}
		}
	}
	return fs
}

package main

import (
	"errors"
	"fmt"
	"net/mail"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/resolver"
	"github.com/mfcheck/mfcheck/pkg/smtpprobe"
)

// passwordEnv is the only place besides --password-file a password is read
// from: never a flag, which would show in ps and shell history.
const passwordEnv = "MFCHECK_SMTP_PASSWORD"

// sendFlags are the test-message flags of check --send and send.
type sendFlags struct {
	send           bool
	path           string
	server         string
	to, outboundTo []string
	from           string
	outboundServer string
	bypassHost     string
	user           string
	passwordFile   string
	authMech       string
	dkimKey        string
	signSelector   string
	quitAfter      string
	insecure       bool
	maildir        string
}

// addSendFlags registers the flags shared by send and check.
func (a *app) addSendFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&a.send.to, "to", nil, "recipient of the test message (repeatable); mfcheck sends to no one else")
	f.StringVar(&a.send.from, "from", "", "envelope and header sender of the test message (default: the first --to)")
	f.StringVar(&a.send.user, "user", "", "SMTP AUTH user name; the password comes from $"+passwordEnv+" or --password-file, never a flag")
	f.StringVar(&a.send.passwordFile, "password-file", "", "file whose first line is the SMTP AUTH password")
	f.StringVar(&a.send.authMech, "auth", "", "SMTP AUTH mechanism: plain or login (default: the best the server offers)")
	f.StringVar(&a.send.dkimKey, "dkim-key", "", "PEM private key (RSA or Ed25519) to DKIM-sign the test message with")
	f.StringVar(&a.send.quitAfter, "quit-after", "", "stop at a stage without sending a message: connect, ehlo, tls, mail or rcpt (rcpt answers 'is mail for this recipient accepted?')")
	f.BoolVar(&a.send.insecure, "insecure-skip-verify", false, "accept any certificate where TLS is required (reported in the result)")
}

// sendConfig validates the send flags. domain is the domain a bypass
// recipient must belong to ("" = any).
func (a *app) sendConfig(domain string) (check.SendConfig, error) {
	var s check.SendConfig
	var err error
	if s.To, err = addresses("--to", a.send.to); err != nil {
		return s, err
	}
	if s.OutboundTo, err = addresses("--outbound-to", a.send.outboundTo); err != nil {
		return s, err
	}
	s.From = a.send.from
	if s.From == "" && len(s.To) > 0 {
		s.From = s.To[0]
	} else if s.From == "" && len(s.OutboundTo) > 0 {
		s.From = s.OutboundTo[0]
	}
	if s.From != "" {
		from, err := addresses("--from", []string{s.From})
		if err != nil {
			return s, err
		}
		s.From = from[0]
	}
	if s.Auth, err = a.auth(); err != nil {
		return s, err
	}
	if a.send.dkimKey != "" {
		if a.send.signSelector == "" {
			return s, errors.New("--dkim-key needs --dkim-selector: the selector the public key is published under")
		}
		key, err := smtpprobe.LoadDKIMKey(a.send.dkimKey)
		if err != nil {
			return s, fmt.Errorf("--dkim-key: %w", err)
		}
		signDomain := s.From[strings.LastIndexByte(s.From, '@')+1:]
		s.DKIM = &smtpprobe.DKIMSigner{Domain: signDomain, Selector: a.send.signSelector, Key: key}
	}
	switch q := smtpprobe.Stage(a.send.quitAfter); q {
	case "", smtpprobe.StageConnect, smtpprobe.StageEHLO, "tls", smtpprobe.StageMail, smtpprobe.StageRcpt:
		s.QuitAfter = q
	default:
		return s, fmt.Errorf("--quit-after %q: want connect, ehlo, tls, mail or rcpt", a.send.quitAfter)
	}
	s.InsecureSkipVerify = a.send.insecure
	return s, s.Validate(domain)
}

// auth reads the SMTP AUTH credentials; the password is never a flag.
func (a *app) auth() (*smtpprobe.Auth, error) {
	if a.send.user == "" {
		if a.send.passwordFile != "" {
			return nil, errors.New("--password-file needs --user")
		}
		return nil, nil
	}
	var password string
	switch {
	case a.send.passwordFile != "":
		data, err := os.ReadFile(a.send.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
		password, _, _ = strings.Cut(string(data), "\n")
		password = strings.TrimSuffix(password, "\r")
	default:
		password = os.Getenv(passwordEnv)
	}
	if password == "" {
		return nil, fmt.Errorf("--user %s needs a password: set $%s or give --password-file", a.send.user, passwordEnv)
	}
	switch a.send.authMech {
	case "", "plain", "login":
	default:
		return nil, fmt.Errorf("--auth %q: want plain or login", a.send.authMech)
	}
	return &smtpprobe.Auth{Username: a.send.user, Password: password, Mechanism: a.send.authMech}, nil
}

// addresses validates bare addresses (local@domain, RFC 5321 §4.1.2) and
// returns them without display names or brackets.
func addresses(flag string, in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		a, err := mail.ParseAddress(strings.TrimSpace(s))
		if err != nil || strings.ContainsAny(a.Address, "\r\n<> ") || !strings.Contains(a.Address, "@") {
			return nil, fmt.Errorf("%s %q is not a mail address (local@domain)", flag, s)
		}
		domain := a.Address[strings.LastIndexByte(a.Address, '@')+1:]
		if _, err := resolver.ValidateHostname(domain); err != nil {
			return nil, fmt.Errorf("%s %q: %q is not a domain name", flag, s, domain)
		}
		out = append(out, a.Address)
	}
	return out, nil
}

// addCheckSendFlags registers check's --send and the flags only it needs.
func (a *app) addCheckSendFlags(cmd *cobra.Command) {
	a.addSendFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&a.send.send, "send", false, "send test messages: inbound to --to through the MX hosts, the bypass test, and outbound with --outbound-server")
	f.StringVar(&a.send.outboundServer, "outbound-server", "", "with --send: HOST[:PORT] to submit an outbound test message through (smart host or submission server)")
	f.StringArrayVar(&a.send.outboundTo, "outbound-to", nil, "with --outbound-server: recipient outside the domain (repeatable)")
	f.StringVar(&a.send.bypassHost, "bypass-host", "", "the mailbox platform's own endpoint for the bypass test (with --send, or in smoke mode; default: found from the MX, or Microsoft 365's naming convention)")
	f.StringVar(&a.send.maildir, "maildir", "", "with --send: the Maildir the inbound test message lands in; mfcheck waits for it (up to 60 s) and traces it")
}

// checkSendConfig is check's part: nothing is sent without --send.
func (a *app) checkSendConfig(domain string) (check.SendConfig, error) {
	if !a.send.send {
		if a.send.bypassHost != "" {
			// Smoke mode runs the bypass test (RCPT only) without --send.
			hp, err := parseHostPort(a.send.bypassHost, "--bypass-host")
			return check.SendConfig{BypassHost: &hp}, err
		}
		for flag, set := range map[string]bool{"--to": len(a.send.to) > 0, "--outbound-server": a.send.outboundServer != "",
			"--outbound-to": len(a.send.outboundTo) > 0, "--quit-after": a.send.quitAfter != "",
			"--dkim-key": a.send.dkimKey != "", "--user": a.send.user != "", "--maildir": a.send.maildir != ""} {
			if set {
				return check.SendConfig{}, fmt.Errorf("%s needs --send", flag)
			}
		}
		return check.SendConfig{}, nil
	}
	if a.tls.noSMTP {
		return check.SendConfig{}, errors.New("--send and --no-smtp contradict each other: a test message needs an SMTP connection")
	}
	if a.send.dkimKey != "" && len(a.tls.dkimSelectors) > 0 {
		// The selector signed with is one to check, too.
		a.send.signSelector = a.tls.dkimSelectors[0]
	}
	s, err := a.sendConfig(domain)
	if err != nil {
		return s, err
	}
	if len(s.To) == 0 {
		return s, errors.New("--send needs --to: the recipient of the test message, in " + domain)
	}
	s.Inbound, s.Bypass = true, true
	if a.send.outboundServer != "" {
		hp, err := parseHostPort(a.send.outboundServer, "--outbound-server")
		if err != nil {
			return s, err
		}
		if len(s.OutboundTo) == 0 {
			return s, errors.New("--outbound-server needs --outbound-to: a recipient outside the domain")
		}
		s.OutboundServer = &hp
	} else if len(s.OutboundTo) > 0 {
		return s, errors.New("--outbound-to needs --outbound-server")
	}
	if a.send.bypassHost != "" {
		hp, err := parseHostPort(a.send.bypassHost, "--bypass-host")
		if err != nil {
			return s, err
		}
		s.BypassHost = &hp
	}
	s.Maildir = a.send.maildir
	return s, s.Validate(domain)
}

func (a *app) sendCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "send --path inbound|outbound|bypass --to RCPT",
		Short: "Send a test message through the inbound or outbound path, or run the gateway bypass test",
		Long: `send delivers one test message with a unique token (in the Subject, the Message-ID and an
X-Mfcheck-Token header) and reports each stage with its timing, the TLS state, the queue id and,
on failure, the stage, the SMTP code and the enhanced status code.

  --path inbound   to the recipients' MX hosts in preference order, falling back to the next
                   (or to --server); STARTTLS when offered, as an MTA does
  --path outbound  through --server (a smart host or submission server: port 25, 587 with
                   STARTTLS or 465 with implicit TLS), with SMTP AUTH when --user is given;
                   TLS is required whenever credentials are sent
  --path bypass    to --server, the mailbox platform's own endpoint (for Microsoft 365 the
                   tenant's *.mail.protection.outlook.com host): MAIL FROM and RCPT TO only,
                   never DATA. Accepted means mail can skip the gateway.

The password comes only from $MFCHECK_SMTP_PASSWORD or --password-file and appears in no output.
--quit-after rcpt asks "is mail for this recipient accepted?" without sending a message.`,
		Example: `  mfcheck send --path inbound --to postmaster@contoso.com --from probe@fabrikam.example
  mfcheck send --path inbound --to postmaster@contoso.com --quit-after rcpt --server eu-smtp-inbound-1.mimecast.com
  MFCHECK_SMTP_PASSWORD=... mfcheck send --path outbound --server smtp.office365.com:587 --user probe@contoso.com --to me@fabrikam.example
  mfcheck send --path bypass --server contoso-com.mail.protection.outlook.com --to postmaster@contoso.com`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runSend(cmd) },
	}
	a.addSendFlags(cmd)
	a.addTLSTrustFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&a.send.path, "path", "inbound", "inbound, outbound or bypass")
	f.StringVar(&a.send.server, "server", "", "HOST[:PORT] to send to (inbound: instead of the MX hosts; outbound and bypass: required)")
	f.StringVar(&a.send.signSelector, "dkim-selector", "", "DKIM selector for --dkim-key")
	f.IntVar(&a.tls.smtpPort, "smtp-port", 25, "port when --server has none, and for MX hosts (only labs change it)")
	return cmd
}

func (a *app) runSend(cmd *cobra.Command) error {
	opts, err := a.parseOptions()
	if err != nil {
		return err
	}
	path := smtpprobe.SendPath(a.send.path)
	var server *check.HostPort
	if a.send.server != "" {
		hp, err := parseHostPort(a.send.server, "--server")
		if err != nil {
			return err
		}
		server = &hp
	}
	switch path {
	case smtpprobe.PathInbound:
	case smtpprobe.PathOutbound, smtpprobe.PathBypass:
		if server == nil {
			return fmt.Errorf("--path %s needs --server", path)
		}
	default:
		return fmt.Errorf("--path %q: want inbound, outbound or bypass", a.send.path)
	}
	if path == smtpprobe.PathOutbound {
		// The outbound recipients are the --to ones here.
		a.send.outboundTo, a.send.to = a.send.to, nil
	}
	// send names no domain of its own: the recipients say where mail goes.
	s, err := a.sendConfig("")
	if err != nil {
		return err
	}
	if len(s.To) == 0 && len(s.OutboundTo) == 0 {
		return errors.New("send needs --to: the recipient of the test message")
	}
	if path == smtpprobe.PathInbound && commonDomain(s.To) == "" {
		return errors.New("--path inbound sends through one domain's MX hosts: give recipients of one domain")
	}
	if err := validEHLOName(a.tls.ehloName); err != nil {
		return err
	}
	if a.tls.smtpPort < 1 || a.tls.smtpPort > 65535 {
		return fmt.Errorf("--smtp-port %d is not a port", a.tls.smtpPort)
	}
	client, roots, ctx, cancel, err := a.netSession(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	smtpCfg := check.SMTPConfig{HeloName: a.tls.ehloName}
	if a.tls.smtpPort != 25 {
		smtpCfg.Port = a.tls.smtpPort
	}
	rep := check.RunSend(ctx, check.SendRun{Path: path, Server: server, Send: s, SMTP: smtpCfg, Roots: roots,
		Mode: a.mode, Trace: a.trace, Version: versionString()}, check.Deps{DNS: client})
	return a.render(rep, opts)
}

// commonDomain is the domain all addresses share, or "".
func commonDomain(addrs []string) string {
	d := ""
	for _, a := range addrs {
		ad := strings.ToLower(a[strings.LastIndexByte(a, '@')+1:])
		if d != "" && ad != d {
			return ""
		}
		d = ad
	}
	return d
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/msgtrace"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// maxMessage bounds what trace reads from a file or standard input.
const maxMessage = 32 << 20

type traceFlags struct {
	maildir, token, authServID, mailbox string
	noDKIM                              bool
}

func (a *app) traceCommand() *cobra.Command {
	var tf traceFlags
	cmd := &cobra.Command{
		Use:   "trace FILE|-",
		Short: "Read a received message: Received hops and delays, the gateway hop, TLS per hop, Authentication-Results, DKIM",
		Long: `trace reads a received message (a file, - for standard input, or the one in --maildir whose
X-Mfcheck-Token is --token) and shows its Received chain as hops from the sender to the mailbox,
with the delay of each, whether each hop used TLS, and which hop went through the gateway of
--profile. It reads the Authentication-Results headers (RFC 8601) and verifies the DKIM
signatures with keys looked up through --resolver (--no-dkim skips that, for a message read
offline).`,
		Example: `  mfcheck trace received.eml --profile mimecast-eu
  mfcheck trace --maildir ~/Maildir --token mfc-3fz7q2k4c5x2m7wq9r1a --profile mimecast-eu --output json
  mfcheck trace - --no-dkim < message.eml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if tf.maildir != "" {
				return exactArgs(0, "")(cmd, args)
			}
			return exactArgs(1, "a message file, - or --maildir with --token")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return a.runTrace(cmd, args, tf) },
	}
	f := cmd.Flags()
	f.StringVar(&tf.maildir, "maildir", "", "Maildir to search (new/ and cur/) for the message with --token")
	f.StringVar(&tf.token, "token", "", "the X-Mfcheck-Token of the message to find in --maildir")
	f.StringVar(&tf.authServID, "authserv-id", "", "trust only Authentication-Results of this authserv-id (your mailbox platform's); default: the topmost, marked as assumed")
	f.StringVar(&tf.mailbox, "mailbox", "", "profile of the mail platform behind the gateway (default microsoft365 when --profile is a gateway)")
	f.BoolVar(&tf.noDKIM, "no-dkim", false, "do not look up DKIM keys (no DNS at all)")
	return cmd
}

func (a *app) runTrace(cmd *cobra.Command, args []string, tf traceFlags) error {
	opts, err := a.parseOptions()
	if err != nil {
		return err
	}
	if (tf.maildir == "") != (tf.token == "") {
		return errors.New("--maildir and --token go together")
	}
	mailbox, err := traceMailbox(opts, tf.mailbox)
	if err != nil {
		return err
	}
	raw, source, err := readMessage(args, tf)
	if err != nil {
		return err
	}
	cfg := check.TraceConfig{Raw: raw, Source: source, Profile: opts.profile, Mailbox: mailbox, AuthServID: tf.authServID,
		VerifyDKIM: !tf.noDKIM, Mode: a.mode, Trace: a.trace, Version: versionString()}
	var deps check.Deps
	if !tf.noDKIM {
		client, err := resolver.New(resolver.Config{Servers: a.resolvers, ResolvConf: a.resolvConf})
		if err != nil {
			return err
		}
		deps.DNS = client
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	return a.render(check.RunTrace(ctx, cfg, deps), opts)
}

// traceMailbox is --mailbox, or Microsoft 365 behind a gateway profile
// (the case mfcheck is built for; say --mailbox for another platform).
func traceMailbox(opts *options, id string) (*profile.Profile, error) {
	if id != "" {
		p, err := opts.registry.Get(id)
		if err != nil {
			return nil, err
		}
		if p.Kind != profile.KindMailbox {
			return nil, fmt.Errorf("--mailbox %s is a %s profile, not a mail platform", id, p.Kind)
		}
		return p, nil
	}
	if opts.profile == nil || opts.profile.Kind != profile.KindGateway {
		return nil, nil
	}
	p, err := opts.registry.Get("microsoft365")
	if err != nil {
		return nil, nil
	}
	return p, nil
}

func readMessage(args []string, tf traceFlags) ([]byte, string, error) {
	if tf.maildir != "" {
		path, err := msgtrace.FindInMaildir(tf.maildir, tf.token)
		if err != nil {
			return nil, "", fmt.Errorf("--maildir %s: %w", tf.maildir, err)
		}
		raw, err := readBounded(path)
		return raw, "maildir " + tf.maildir + ", token " + tf.token, err
	}
	if args[0] == "-" {
		raw, err := io.ReadAll(io.LimitReader(os.Stdin, maxMessage+1))
		if err == nil && len(raw) > maxMessage {
			err = fmt.Errorf("standard input: the message is over %d MiB", maxMessage>>20)
		}
		return raw, "-", err
	}
	raw, err := readBounded(args[0])
	return raw, args[0], err
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxMessage+1))
	if err == nil && len(raw) > maxMessage {
		err = fmt.Errorf("%s: the message is over %d MiB", path, maxMessage>>20)
	}
	return raw, err
}

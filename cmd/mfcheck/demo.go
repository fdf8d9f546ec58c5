package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/lab"
)

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run 'check' against a built-in simulated world on loopback (no real domain is contacted)",
		Long: `demo starts a simulated mail world inside the process: contoso.example, an Exchange hybrid
organisation that has just moved its MX behind Mimecast EU, with the gateway's and Microsoft 365's
zones, all on loopback, with SMTP hosts for the gateway and Microsoft 365 and an MTA-STS policy host.
It then runs 'mfcheck check contoso.example --profile mimecast-eu --mode smoke --send' against it
(a test message in through the MX, one out through the gateway's smart host, the bypass test at
the Microsoft 365 endpoint) and prints the report. It takes the same output flags as check.`,
		Example: `  mfcheck demo
  mfcheck demo --output json
  mfcheck demo --mode readiness --trace`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(a.resolvers) > 0 {
				return fmt.Errorf("demo uses its own simulated DNS; --resolver does not apply")
			}
			if !cmd.Flags().Changed("mode") {
				a.mode = lab.Mode
			}
			if !cmd.Flags().Changed("profile") {
				a.profileID = lab.Profile
			}
			world, err := lab.Start()
			if err != nil {
				return err
			}
			defer world.Close()
			a.nsPort = world.NSPort
			a.tls.smtpPort = world.SMTPPort
			a.tls.extraRoots = world.Roots
			a.tls.mtaSTSPort = world.HTTPSPort
			// The smoke test sends: a message in through the MX, one out
			// through the gateway's smart host to the lab's outside
			// mailbox, and the bypass test at the Microsoft 365 endpoint.
			a.send.send = true
			a.send.to = []string{"postmaster@" + lab.Domain}
			a.send.from = "postmaster@" + lab.Domain
			a.send.outboundServer = lab.OutboundSmartHost
			a.send.outboundTo = []string{"mailbox@" + lab.ExternalDomain}
			return a.runCheck(cmd, lab.Domain, nil, []string{world.Resolver}, true, lab.Notes())
		},
	}
}

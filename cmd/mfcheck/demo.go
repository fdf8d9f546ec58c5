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
zones, all on loopback. It then runs 'mfcheck check contoso.example --profile mimecast-eu --mode smoke'
against it and prints the report. It takes the same output flags as check.`,
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
			return a.runCheck(cmd, lab.Domain, nil, []string{world.Resolver}, true, lab.Notes())
		},
	}
}

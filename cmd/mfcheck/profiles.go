package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

func (a *app) profilesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "profiles [ID]",
		Short: "List the gateway profiles, or show one",
		Example: `  mfcheck profiles
  mfcheck profiles mimecast-eu
  mfcheck profiles --profiles-file my-gateways.yaml --output json`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := a.parseOptions()
			if err != nil {
				return err
			}
			var list []*profile.Profile
			if len(args) == 1 {
				p, err := opts.registry.Get(args[0])
				if err != nil {
					return err
				}
				list = []*profile.Profile{p}
			} else {
				list = opts.registry.All()
			}
			if opts.format == report.FormatJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if len(args) == 1 {
					return enc.Encode(list[0])
				}
				return enc.Encode(list)
			}
			if len(args) == 1 {
				return a.showProfile(list[0])
			}
			return a.listProfiles(list)
		},
	}
}

func (a *app) listProfiles(list []*profile.Profile) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tREGION\tSPF INCLUDE\tNAME")
	for _, p := range list {
		inc := strings.Join(p.SPFIncludes, " ")
		if inc == "" {
			inc = "-"
		}
		name := p.Name
		if !p.Builtin {
			name += " (user profile)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Kind, p.Region, inc, name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(a.stdout, "\nFacts marked (unverified) in 'mfcheck profiles ID' come from observation or third parties, not the vendor's documentation.")
	return err
}

func (a *app) showProfile(p *profile.Profile) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	last := ""
	for _, f := range profile.Describe(p) {
		label := f.Name
		if label == last {
			label = ""
		} else {
			last = f.Name
		}
		val := f.Value
		if f.Uncertain {
			val += "  (unverified)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, val)
	}
	return tw.Flush()
}

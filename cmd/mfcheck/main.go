// Command mfcheck verifies and diagnoses a domain's mail flow: MX, SPF, TLS
// and test messages, before and after a move behind an email security gateway.
//
// This package only parses flags, wires the real resolver, runs pkg/check and
// hands the report to pkg/report; it holds no checking logic.
package main

import (
	"fmt"
	"os"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit code
// (DESIGN.md: 0 clean, 1 findings at or above --fail-on, 2 usage or
// configuration error, 3 some check could not run).
func run(args []string) int {
	app := newApp(os.Stdout, os.Stderr)
	root := app.rootCommand()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "mfcheck: %v\n", err)
		return report.ExitUsage
	}
	return app.exitCode
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/config"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

func (a *app) initCommand() *cobra.Command {
	var file string
	var force bool
	cmd := &cobra.Command{
		Use:   "init DOMAIN",
		Short: "Write a commented mfcheck.yaml for a domain, to edit and run with 'check -c'",
		Long: `init writes a config file for DOMAIN (and the gateway of --profile): version, defaults
(profile, mode, thresholds) and one domain entry, with every optional key (senders that must
pass SPF, the allow list, smart hosts, DKIM selectors, test messages, suppressions) written out
as a comment that says what it is for. Nothing is sent until a send block is uncommented.
An existing file is never overwritten without --force; --file - prints the file instead.`,
		Example: `  mfcheck init contoso.com --profile mimecast-eu
  mfcheck init contoso.com --profile mimecast-eu --file ci/mfcheck.yaml --force
  mfcheck init contoso.com --file -`,
		Args: exactArgs(1, "a domain"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := a.parseOptions()
			if err != nil {
				return err
			}
			domain, err := resolver.ValidateHostname(args[0])
			if err != nil {
				return fmt.Errorf("invalid domain %q: %s", args[0], strings.TrimPrefix(err.Error(), resolver.ErrBadName.Error()+": "))
			}
			if file == "" {
				return errors.New("--file needs a path, or - for standard output")
			}
			data := config.Starter(trimDot(domain), opts.profile)
			// The file must load as written; checking here turns a bug in
			// Starter into an error now rather than at the first check -c.
			name := file
			if name == "-" {
				name = "mfcheck.yaml"
			}
			if _, err := config.Parse(data, name, opts.registry); err != nil {
				return fmt.Errorf("the starter file does not parse (a bug in mfcheck): %w", err)
			}
			if file == "-" {
				_, err := a.stdout.Write(data)
				return err
			}
			if err := writeNew(file, data, force); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %s for %s; edit it, then run: mfcheck check -c %s\n", file, trimDot(domain), file)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "mfcheck.yaml", "file to write, or - for standard output")
	f.BoolVar(&force, "force", false, "overwrite the file if it exists")
	return cmd
}

// writeNew writes data to path. Without force it creates the file
// exclusively (O_EXCL), so a file that appears in the meantime is not
// overwritten either; with force it writes a temporary file next to path and
// renames it, so an interrupted write never leaves half a config behind.
func writeNew(path string, data []byte, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; use --force to overwrite it, or --file to write another", path)
		}
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		return f.Close()
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mfcheck-init-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Command xvmrelease is xvmbot's release build: from this module alone, with no network and
// no Docker, it builds the linux/amd64 and linux/arm64 binaries (static, -trimpath, stamped
// with version, commit, date and tree state), a tar.gz archive and a CycloneDX SBOM per
// binary, a multi-arch OCI image layout (one image per architecture on an empty base), and a
// sha256 checksums file over them all. docs/release.md says how to cut a release with it.
//
//	go run ./cmd/xvmrelease -snapshot -out dist   # any commit: version 0.1.0-SNAPSHOT-<commit>
//	go run ./cmd/xvmrelease -out dist             # a clean tree on the tag v<system.ReleaseVersion>
//	go run ./cmd/xvmrelease -verify dist          # check a build's outputs (what CI runs)
//
// It publishes and signs nothing: pushing the image and signing its digest need the network
// and a key (docs/release.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "xvmrelease:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("xvmrelease", flag.ContinueOnError)
	cfg := Config{Dir: ".", Main: "./cmd/xvmbot", Log: stdout}
	var archs, verify string
	fs.BoolVar(&cfg.Snapshot, "snapshot", false, "build the current tree, clean or not, as <ReleaseVersion>-SNAPSHOT-<commit>")
	fs.StringVar(&cfg.Out, "out", "dist", "output directory (emptied first)")
	fs.StringVar(&archs, "arch", strings.Join(Archs, ","), "linux architectures to build")
	fs.StringVar(&cfg.Image, "image", DefaultImage, "the image's repository, named in the OCI layout")
	fs.StringVar(&verify, "verify", "", "check the outputs in this directory instead of building")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Archs = strings.Split(archs, ",")
	if verify != "" {
		if err := Verify(ctx, VerifyConfig{Dir: cfg.Dir, Out: verify, Archs: cfg.Archs, Modules: RequiredModules}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: checksums, binaries, archives, SBOMs and image of %s verified\n", verify, strings.Join(cfg.Archs, ", "))
		return nil
	}
	return Build(ctx, cfg)
}

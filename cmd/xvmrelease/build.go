package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.yaml.in/yaml/v3"

	"github.com/xvmbot/xvmbot/system"
)

// Archs are the architectures of a release: every binary and image is built for each.
var Archs = []string{"amd64", "arm64"}

// DefaultImage is the repository the image is named for (the Helm chart's image.repository).
const DefaultImage = "ghcr.io/xvmbot/xvmbot"

// Source is the repository the image's org.opencontainers.image.source label names.
const Source = "https://github.com/xvmbot/xvmbot"

// ArchiveFiles go into every archive beside the binary, at these paths.
var ArchiveFiles = []string{"README.md", "CHANGELOG.md", "deploy/xvmbot.example.yaml"}

// ChecksumsFile lists the sha256 of every other file at the top of the output directory, in
// the format `sha256sum -c` reads.
const ChecksumsFile = "checksums.txt"

// Config is one release build.
type Config struct {
	Dir      string // the module's root (a git work tree)
	Main     string // the package to build, relative to Dir
	Out      string // the output directory, emptied first
	Archs    []string
	Snapshot bool   // any tree, any commit; else a clean tree on the release's tag
	Image    string // the image's repository
	Log      io.Writer
}

// Revision is what git says of the tree being built.
type Revision struct {
	Commit string    // full hash
	Short  string    // abbreviated hash
	Time   time.Time // commit time: every file's modification time, the image's creation time
	Dirty  bool      // uncommitted changes or untracked files
	Tags   []string  // the tags on the commit
}

// TreeState is the stamp's word for Dirty.
func (r Revision) TreeState() string {
	if r.Dirty {
		return "dirty"
	}
	return "clean"
}

// Names are the output files of one version.
type Names struct{ Version string }

// Archive is the tar.gz of one architecture.
func (n Names) Archive(arch string) string {
	return fmt.Sprintf("xvmbot_%s_linux_%s.tar.gz", n.Version, arch)
}

// SBOM is the CycloneDX SBOM of one architecture's binary.
func (n Names) SBOM(arch string) string {
	return fmt.Sprintf("xvmbot_%s_linux_%s.sbom.cdx.json", n.Version, arch)
}

// ImageTar is the OCI image layout as one tar file (the directory ImageDir, tarred).
func (n Names) ImageTar() string { return fmt.Sprintf("xvmbot_%s_oci.tar", n.Version) }

// Binary is where the binary of one architecture is built, under the output directory.
func (Names) Binary(arch string) string { return filepath.Join("xvmbot_linux_"+arch, "xvmbot") }

// ImageDir is the OCI image layout directory under the output directory.
const ImageDir = "oci"

// Build runs the release build: binaries, archives, SBOMs, image, checksums.
func Build(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if len(cfg.Archs) == 0 {
		return errors.New("no architecture to build")
	}
	for _, a := range cfg.Archs {
		if !slices.Contains(Archs, a) {
			return fmt.Errorf("architecture %q: a release builds %s", a, strings.Join(Archs, ", "))
		}
	}
	rev, err := readRevision(ctx, cfg.Dir)
	if err != nil {
		return err
	}
	version, err := releaseVersion(cfg, rev)
	if err != nil {
		return err
	}
	if err := cleanOut(cfg.Dir, cfg.Out); err != nil {
		return err
	}
	names := Names{Version: version}
	fmt.Fprintf(cfg.Log, "xvmbot %s (revision %s, %s) for %s\n", version, rev.Commit, rev.TreeState(), strings.Join(cfg.Archs, ", "))

	var artifacts []string
	bins := map[string][]byte{}
	for _, arch := range cfg.Archs {
		start := time.Now()
		bin := filepath.Join(cfg.Out, names.Binary(arch))
		if err := goBuild(ctx, cfg, rev, version, arch, bin); err != nil {
			return err
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		bins[arch] = data
		sbom, err := NewSBOM(bin, version, rev.Time)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(cfg.Out, names.SBOM(arch)), sbom, rev.Time); err != nil {
			return err
		}
		if err := writeArchive(cfg.Dir, filepath.Join(cfg.Out, names.Archive(arch)), data, rev.Time); err != nil {
			return err
		}
		artifacts = append(artifacts, names.Archive(arch), names.SBOM(arch))
		fmt.Fprintf(cfg.Log, "  linux/%s: binary, archive, SBOM in %s\n", arch, time.Since(start).Round(time.Millisecond))
	}

	start := time.Now()
	img := ImageSpec{Repository: cfg.Image, Version: version, Revision: rev.Commit, Created: rev.Time, Binaries: bins}
	if err := WriteImage(img, filepath.Join(cfg.Out, ImageDir), filepath.Join(cfg.Out, names.ImageTar())); err != nil {
		return err
	}
	artifacts = append(artifacts, names.ImageTar())
	fmt.Fprintf(cfg.Log, "  image: OCI layout %s/ and %s in %s\n", ImageDir, names.ImageTar(), time.Since(start).Round(time.Millisecond))

	if err := writeChecksums(cfg.Out, artifacts, rev.Time); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "  %s over %d files; outputs in %s\n", ChecksumsFile, len(artifacts), cfg.Out)
	return nil
}

// releaseVersion is the version to stamp: a snapshot's, or the tag's after the checks of a
// release.
func releaseVersion(cfg Config, rev Revision) (string, error) {
	if cfg.Snapshot {
		return system.ReleaseVersion + "-SNAPSHOT-" + rev.Short, nil
	}
	changelog, err := os.ReadFile(filepath.Join(cfg.Dir, "CHANGELOG.md"))
	if err != nil {
		return "", err
	}
	chart, err := chartAppVersion(filepath.Join(cfg.Dir, "deploy/helm/xvmbot/Chart.yaml"))
	if err != nil {
		return "", err
	}
	return system.ReleaseVersion, CheckRelease(ReleaseState{
		Tags: rev.Tags, Dirty: rev.Dirty, Code: system.ReleaseVersion,
		Changelog: ChangelogVersion(string(changelog)), Chart: chart,
	})
}

// ReleaseState is what a release (not a snapshot) is checked against.
type ReleaseState struct {
	Tags      []string // the tags on HEAD
	Dirty     bool
	Code      string // system.ReleaseVersion
	Changelog string // the newest version in CHANGELOG.md
	Chart     string // the Helm chart's appVersion
}

var semverTag = regexp.MustCompile(`^v(\d+\.\d+\.\d+)$`)

// CheckRelease refuses a release unless the tree is clean and HEAD is tagged vX.Y.Z with X.Y.Z
// the version the code, the CHANGELOG and the chart all name: a release is what the tag says.
func CheckRelease(s ReleaseState) error {
	var errs []error
	if s.Dirty {
		errs = append(errs, errors.New("the work tree has uncommitted changes or untracked files: a release is built from a clean tree (commit, or build a -snapshot)"))
	}
	var tagged []string
	for _, t := range s.Tags {
		if m := semverTag.FindStringSubmatch(t); m != nil {
			tagged = append(tagged, m[1])
		}
	}
	switch {
	case len(tagged) == 0:
		errs = append(errs, fmt.Errorf("HEAD has no tag vX.Y.Z (tags: %q): tag the release commit v%s, or build a -snapshot", s.Tags, s.Code))
	case !slices.Contains(tagged, s.Code):
		errs = append(errs, fmt.Errorf("HEAD is tagged v%s, but system.ReleaseVersion is %s", strings.Join(tagged, ", v"), s.Code))
	}
	if s.Changelog != s.Code {
		errs = append(errs, fmt.Errorf("the newest release in CHANGELOG.md is %q, but system.ReleaseVersion is %s", s.Changelog, s.Code))
	}
	if s.Chart != s.Code {
		errs = append(errs, fmt.Errorf("the Helm chart's appVersion is %q, but system.ReleaseVersion is %s", s.Chart, s.Code))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("not a release:\n%w", err)
	}
	return nil
}

var changelogRelease = regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+[^\]]*)\]`)

// ChangelogVersion is the newest released version in a CHANGELOG.md (Unreleased is not one).
func ChangelogVersion(changelog string) string {
	if m := changelogRelease.FindStringSubmatch(changelog); m != nil {
		return m[1]
	}
	return ""
}

func chartAppVersion(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var chart struct {
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return chart.AppVersion, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func readRevision(ctx context.Context, dir string) (Revision, error) {
	var r Revision
	var err error
	if r.Commit, err = git(ctx, dir, "rev-parse", "HEAD"); err != nil {
		return r, fmt.Errorf("the release build needs the git work tree it builds: %w", err)
	}
	if r.Short, err = git(ctx, dir, "rev-parse", "--short=12", "HEAD"); err != nil {
		return r, err
	}
	ct, err := git(ctx, dir, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return r, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return r, fmt.Errorf("commit time %q: %w", ct, err)
	}
	r.Time = time.Unix(sec, 0).UTC()
	status, err := git(ctx, dir, "status", "--porcelain")
	if err != nil {
		return r, err
	}
	r.Dirty = status != ""
	tags, err := git(ctx, dir, "tag", "--points-at", "HEAD")
	if err != nil {
		return r, err
	}
	r.Tags = strings.Fields(tags)
	return r, nil
}

// cleanOut empties the output directory, refusing one that holds the module (a mistyped -out
// must not delete sources).
func cleanOut(dir, out string) error {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(absOut, absDir); err == nil && !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("output directory %s holds the module: choose another -out", out)
	}
	// Only what a release build writes is removed: a mistyped -out naming another directory
	// is refused, not emptied.
	entries, err := os.ReadDir(out)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); n != ChecksumsFile && n != ImageDir && !strings.HasPrefix(n, "xvmbot_") {
			return fmt.Errorf("output directory %s holds %s, which a release build does not write: remove it or choose another -out", out, n)
		}
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	return os.MkdirAll(out, 0o755)
}

// goBuild builds the binary as the Makefile's build target does, for linux/arch: static,
// without local paths, stamped; the same source and Go give the same bytes.
func goBuild(ctx context.Context, cfg Config, rev Revision, version, arch, out string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	// -buildvcs=false: the stamp carries the revision; VCS settings would differ between a
	// tree with build output in it and one without.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags(version, rev), "-o", abs, cfg.Main)
	cmd.Dir = cfg.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build linux/%s: %w\n%s", arch, err, msg)
	}
	return os.Chtimes(abs, rev.Time, rev.Time)
}

// ldflags strip the binary and stamp it, as the Makefile's LDFLAGS do: the variables
// cmd/xvmbot/version.go declares, read by `xvmbot version` and xvm_build_info.
func ldflags(version string, rev Revision) string {
	return fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s -X main.date=%s -X main.treeState=%s",
		version, rev.Commit, rev.Time.UTC().Format(time.RFC3339), rev.TreeState())
}

// tarEntry is one file or directory of a reproducible tar: owner, mode and time are given,
// never read from the build machine.
type tarEntry struct {
	Name     string
	Mode     int64
	UID, GID int
	Data     []byte // nil for a directory
	Dir      bool
}

// writeTar writes entries in the order given, all with modification time t.
func writeTar(w io.Writer, entries []tarEntry, t time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Uid: e.UID, Gid: e.GID, ModTime: t, Format: tar.FormatPAX}
		if e.Dir {
			h.Typeflag = tar.TypeDir
			h.Name = strings.TrimSuffix(e.Name, "/") + "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.Data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeArchive writes the tar.gz of one binary with ArchiveFiles from dir.
func writeArchive(dir, path string, bin []byte, t time.Time) error {
	entries := []tarEntry{{Name: "xvmbot", Mode: 0o755, Data: bin}}
	seenDir := map[string]bool{}
	for _, f := range ArchiveFiles {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if d := filepath.Dir(f); d != "." && !seenDir[d] {
			seenDir[d] = true
			entries = append(entries, tarEntry{Name: d, Mode: 0o755, Dir: true})
		}
		entries = append(entries, tarEntry{Name: f, Mode: 0o644, Data: data})
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	zw.ModTime = t
	if err := writeTar(zw, entries, t); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return writeFile(path, buf.Bytes(), t)
}

func writeFile(path string, data []byte, t time.Time) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	return os.Chtimes(path, t, t)
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeChecksums(out string, files []string, t time.Time) error {
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		sum, err := sha256File(filepath.Join(out, f))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, f)
	}
	return writeFile(filepath.Join(out, ChecksumsFile), []byte(b.String()), t)
}

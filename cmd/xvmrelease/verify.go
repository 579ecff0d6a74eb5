package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/gzip"
)

// RequiredModules must be in every binary's SBOM at the version go.mod requires: the two the
// bot is built on, and the roots that let it reach Slack from an image without a CA bundle.
var RequiredModules = []string{"github.com/nats-io/nats-server/v2", "github.com/vmware/govmomi", "golang.org/x/crypto/x509roots/fallback"}

// VerifyConfig is what Verify checks a build's outputs against.
type VerifyConfig struct {
	Dir     string   // the module the outputs were built from (go.mod, git HEAD, archived files)
	Out     string   // the build's output directory
	Archs   []string // every one must be there
	Modules []string // must be in each SBOM at go.mod's version
}

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// Verify checks what a release build wrote, as a user of it would: the checksums, each
// architecture's archive (its binary: right machine type, static, stamped; the host's runs and
// reports its stamp), each SBOM against the binary and go.mod, and the OCI image (an image per
// architecture, non-root, labelled, holding the same binary).
func Verify(ctx context.Context, vc VerifyConfig) error {
	if err := verifyChecksums(vc.Out); err != nil {
		return err
	}
	version, err := outputVersion(vc.Out)
	if err != nil {
		return err
	}
	names := Names{Version: version}
	rev, err := readRevision(ctx, vc.Dir)
	if err != nil {
		return err
	}
	commit := rev.Commit
	required, err := goModVersions(filepath.Join(vc.Dir, "go.mod"), vc.Modules)
	if err != nil {
		return err
	}
	bins := map[string][]byte{}
	var errs []error
	for _, arch := range vc.Archs {
		bin, err := verifyArchive(vc.Dir, filepath.Join(vc.Out, names.Archive(arch)), arch, version)
		if bin != nil {
			bins[arch] = bin // the image must hold it, whatever is wrong with it
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("linux/%s: %w", arch, err))
			continue
		}
		if err := verifySBOM(filepath.Join(vc.Out, names.SBOM(arch)), bin, required); err != nil {
			errs = append(errs, fmt.Errorf("linux/%s SBOM: %w", arch, err))
		}
		if arch == runtime.GOARCH && runtime.GOOS == "linux" {
			if err := runVersion(ctx, bin, "xvmbot "+version+" (revision "+commit, "built "+rev.Time.UTC().Format(time.RFC3339)); err != nil {
				errs = append(errs, fmt.Errorf("linux/%s: %w", arch, err))
			}
		}
	}
	if err := verifyImage(vc.Out, names, vc.Archs, version, commit, bins); err != nil {
		errs = append(errs, fmt.Errorf("image: %w", err))
	}
	return errors.Join(errs...)
}

// verifyChecksums checks every line of the checksums file, and that it lists every file.
func verifyChecksums(out string) error {
	f, err := os.Open(filepath.Join(out, ChecksumsFile))
	if err != nil {
		return err
	}
	defer f.Close()
	listed := map[string]bool{}
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			return fmt.Errorf("%s: line %q is not `sha256  name`", ChecksumsFile, sc.Text())
		}
		listed[name] = true
		got, err := sha256File(filepath.Join(out, name))
		if err != nil {
			errs = append(errs, err)
		} else if got != sum {
			errs = append(errs, fmt.Errorf("%s: sha256 %s, %s says %s", name, got, ChecksumsFile, sum))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != ChecksumsFile && !listed[e.Name()] {
			errs = append(errs, fmt.Errorf("%s is not in %s", e.Name(), ChecksumsFile))
		}
	}
	return errors.Join(errs...)
}

// outputVersion is the version the outputs are named for.
func outputVersion(out string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(out, "xvmbot_*_oci.tar"))
	if err != nil {
		return "", err
	}
	if len(matches) != 1 {
		return "", fmt.Errorf("%s: want one image tar xvmbot_<version>_oci.tar, found %q", out, matches)
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(matches[0]), "xvmbot_"), "_oci.tar"), nil
}

// goModVersions reads the versions go.mod requires of the modules.
func goModVersions(path string, modules []string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && slices.Contains(modules, f[0]) {
			versions[f[0]] = f[1]
		}
	}
	for _, m := range modules {
		if versions[m] == "" {
			return nil, fmt.Errorf("go.mod does not require %s", m)
		}
	}
	return versions, nil
}

// readTarGz returns the regular files of a tar.gz by name.
func readTarGz(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return readTar(zr)
}

func readTar(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			files[h.Name] = data
		}
	}
}

// verifyArchive checks one architecture's archive and returns its binary.
func verifyArchive(dir, path, arch, version string) ([]byte, error) {
	files, err := readTarGz(path)
	if err != nil {
		return nil, err
	}
	for _, name := range ArchiveFiles {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(files[name], want) {
			return nil, fmt.Errorf("%s: %s missing or not the tree's", filepath.Base(path), name)
		}
	}
	bin, ok := files["xvmbot"]
	if !ok {
		return nil, fmt.Errorf("%s holds no xvmbot binary", filepath.Base(path))
	}
	return bin, verifyBinary(bin, arch, version)
}

// verifyBinary checks that the binary is a static Linux executable for arch, built as a
// release is (no cgo, -trimpath) and stamped with version.
func verifyBinary(bin []byte, arch, version string) error {
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	if ef.Machine != elfMachine[arch] {
		return fmt.Errorf("ELF machine %s, want %s", ef.Machine, elfMachine[arch])
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (has an ELF interpreter): a release binary is static")
		}
	}
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		return err
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"GOOS": "linux", "GOARCH": arch, "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != v {
			return fmt.Errorf("built with %s=%q, want %q", k, settings[k], v)
		}
	}
	// A -trimpath build does not record -ldflags; the stamped version is a string in the data.
	if !bytes.Contains(bin, []byte(version)) {
		return fmt.Errorf("not stamped with version %s", version)
	}
	return nil
}

// runVersion runs the binary's version command and checks what it prints: want first, then
// the build date.
func runVersion(ctx context.Context, bin []byte, want, built string) error {
	f, err := os.CreateTemp("", "xvmrelease-verify-*")
	if err != nil {
		return err
	}
	path := f.Name()
	defer os.Remove(path)
	_, err = f.Write(bin)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(path, 0o755)
	}
	if err != nil {
		return err
	}
	var out []byte
	// A fork elsewhere in this process (another test, go build) can hold the file open for
	// writing for a moment, and exec then fails with ETXTBSY (https://go.dev/issue/22315).
	for try := 0; ; try++ {
		out, err = exec.CommandContext(ctx, path, "version").CombinedOutput()
		if !errors.Is(err, syscall.ETXTBSY) || try == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("xvmbot version: %w: %s", err, out)
	}
	if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), built) {
		return fmt.Errorf("xvmbot version says %q, want %q… %q", strings.TrimSpace(string(out)), want, built)
	}
	return nil
}

// verifySBOM checks the SBOM names the binary by its hash, and each required module at its
// version.
func verifySBOM(path string, bin []byte, required map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var bom BOM
	if err := json.Unmarshal(data, &bom); err != nil {
		return err
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.5" {
		return fmt.Errorf("format %q %q, want CycloneDX 1.5", bom.BOMFormat, bom.SpecVersion)
	}
	sum := sha256.Sum256(bin)
	if h := bom.Metadata.Component.Hashes; len(h) != 1 || h[0].Content != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("describes a binary with hashes %v, not the archive's (%x)", h, sum)
	}
	found := map[string]string{}
	for _, c := range bom.Components {
		found[c.Name] = c.Version
	}
	var errs []error
	for m, v := range required {
		if found[m] != v {
			errs = append(errs, fmt.Errorf("lists %s at %q, go.mod requires %s", m, found[m], v))
		}
	}
	if found["std"] == "" {
		errs = append(errs, errors.New("does not list the Go standard library"))
	}
	return errors.Join(errs...)
}

// verifyImage checks the OCI layout: one multi-arch index named for version, an image per
// architecture with the platform, user, labels and binary it should have, and the image tar
// holding the same layout.
func verifyImage(out string, names Names, archs []string, version, commit string, bins map[string][]byte) error {
	dir := filepath.Join(out, ImageDir)
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return err
	}
	tm, err := top.IndexManifest()
	if err != nil {
		return err
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].MediaType != types.OCIImageIndex ||
		tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
		return fmt.Errorf("index.json %+v: want one image index named %s", tm.Manifests, version)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		return err
	}
	// go-containerregistry's own validation: every digest, size and diff ID the index and its
	// manifests state matches the blob, as a registry or runtime would check on pull.
	if err := validate.Index(idx); err != nil {
		return fmt.Errorf("the image index is not consistent: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	var platforms []string
	var errs []error
	for _, d := range im.Manifests {
		if d.Platform == nil {
			return fmt.Errorf("manifest %s has no platform", d.Digest)
		}
		platforms = append(platforms, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if err := verifyArchImage(img, d.Platform.Architecture, version, commit, bins[d.Platform.Architecture]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Platform, err))
		}
	}
	var want []string
	for _, a := range archs {
		want = append(want, "linux/"+a)
	}
	slices.Sort(platforms)
	slices.Sort(want)
	if !slices.Equal(platforms, want) {
		errs = append(errs, fmt.Errorf("platforms %v, want %v", platforms, want))
	}

	f, err := os.Open(filepath.Join(out, names.ImageTar()))
	if err != nil {
		return err
	}
	defer f.Close()
	files, err := readTar(f)
	if err != nil {
		return err
	}
	indexJSON, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	if !bytes.Equal(files["index.json"], indexJSON) || files["oci-layout"] == nil {
		errs = append(errs, fmt.Errorf("%s is not the OCI layout %s/", names.ImageTar(), ImageDir))
	}
	return errors.Join(errs...)
}

func verifyArchImage(img v1.Image, arch, version, commit string, bin []byte) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	c := cf.Config
	switch {
	case cf.OS != "linux" || cf.Architecture != arch:
		return fmt.Errorf("config says %s/%s", cf.OS, cf.Architecture)
	case c.User != fmt.Sprintf("%d:%d", NonRoot, NonRoot):
		return fmt.Errorf("runs as %q, want the non-root %d", c.User, NonRoot)
	case !slices.Equal(c.Entrypoint, []string{BinaryPath}):
		return fmt.Errorf("entrypoint %q", c.Entrypoint)
	case c.Labels["org.opencontainers.image.version"] != version || c.Labels["org.opencontainers.image.revision"] != commit ||
		c.Labels["org.opencontainers.image.source"] != Source:
		return fmt.Errorf("labels %v: want version %s, revision %s, source %s", c.Labels, version, commit, Source)
	case c.Healthcheck == nil || !slices.Equal(c.Healthcheck.Test, []string{"CMD", BinaryPath, "health"}):
		return fmt.Errorf("health check %+v, want the binary's health command", c.Healthcheck)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	fsys := map[string]*tar.Header{}
	var got []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		fsys[strings.TrimSuffix(h.Name, "/")] = h
		switch h.Name {
		case strings.TrimPrefix(BinaryPath, "/"):
			if got, err = io.ReadAll(tr); err != nil {
				return err
			}
		case "etc/passwd":
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if !strings.Contains(string(data), fmt.Sprintf(":x:%d:%d:", NonRoot, NonRoot)) {
				return fmt.Errorf("/etc/passwd has no user %d", NonRoot)
			}
		}
	}
	if bin == nil || !bytes.Equal(got, bin) {
		return fmt.Errorf("%s is not the archive's binary for linux/%s", BinaryPath, arch)
	}
	if h := fsys[strings.TrimPrefix(DataDir, "/")]; h == nil || h.Uid != NonRoot {
		return fmt.Errorf("%s is missing or not the non-root user's", DataDir)
	}
	return nil
}

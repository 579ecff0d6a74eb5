package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/system"
)

// makeRepo makes, in dir, a git repository holding this module's go.mod, go.sum and the
// files a release archives, with testdata/tinybot as cmd/xvmbot: the whole pipeline runs on it
// in seconds, offline (the module cache has its few dependencies), with the git state each
// test needs.
func makeRepo(dir, tag string) error {
	files := map[string]string{"cmd/xvmbot/main.go": "testdata/tinybot/main.go"}
	for _, f := range append([]string{"go.mod", "go.sum", "deploy/helm/xvmbot/Chart.yaml"}, ArchiveFiles...) {
		files[f] = filepath.Join("..", "..", f)
	}
	for dst, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(dst)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			return err
		}
	}
	cmds := [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "fixture"}}
	if tag != "" {
		cmds = append(cmds, []string{"tag", tag})
	}
	for _, args := range cmds {
		if _, err := gitFixture(dir, args...); err != nil {
			return err
		}
	}
	return nil
}

func fixtureRepo(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	if err := makeRepo(dir, tag); err != nil {
		t.Fatal(err)
	}
	return dir
}

// gitFixture runs git in a fixture repository, whatever the user's git configuration.
func gitFixture(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=Release Test", "-c", "user.email=release@example.com",
		"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_COMMITTER_DATE=2026-12-01T12:00:00Z", "GIT_AUTHOR_DATE=2026-12-01T12:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitFixture(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The snapshot fixture, shared read-only by the tests: an untagged repository with an
// uncommitted change, and a snapshot built from it. Tests that change outputs copy them.
var snapshot struct {
	once      sync.Once
	root      string // removed by TestMain
	repo, out string
	err       error
}

func TestMain(m *testing.M) {
	root, err := os.MkdirTemp("", "xvmrelease-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	snapshot.root = root
	code := m.Run()
	os.RemoveAll(root)
	os.Exit(code)
}

func snapshotFixture(t *testing.T) (repo, out string) {
	t.Helper()
	snapshot.once.Do(func() {
		snapshot.repo = filepath.Join(snapshot.root, "repo")
		snapshot.out = filepath.Join(snapshot.root, "dist")
		if snapshot.err = makeRepo(snapshot.repo, ""); snapshot.err != nil {
			return
		}
		if snapshot.err = os.WriteFile(filepath.Join(snapshot.repo, "README.md"), []byte("changed\n"), 0o644); snapshot.err != nil {
			return
		}
		snapshot.err = Build(context.Background(), Config{Dir: snapshot.repo, Main: "./cmd/xvmbot", Out: snapshot.out, Archs: Archs, Snapshot: true, Image: DefaultImage})
	})
	if snapshot.err != nil {
		t.Fatal(snapshot.err)
	}
	return snapshot.repo, snapshot.out
}

// copyOut is a copy of a build's outputs to change.
func copyOut(t *testing.T, out string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dist")
	if err := os.CopyFS(dst, os.DirFS(out)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func build(t *testing.T, repo, out string, snapshot bool, archs ...string) error {
	t.Helper()
	if len(archs) == 0 {
		archs = Archs
	}
	return Build(context.Background(), Config{Dir: repo, Main: "./cmd/xvmbot", Out: out, Archs: archs, Snapshot: snapshot, Image: DefaultImage})
}

func verify(repo, out string) error {
	return Verify(context.Background(), VerifyConfig{Dir: repo, Out: out, Archs: Archs, Modules: RequiredModules})
}

// TestReleaseOfATaggedCleanTree: on a clean tree tagged v<ReleaseVersion>, the release is
// that version, every output verifies (both architectures' binaries, archives, SBOMs with the
// go.mod versions, the two-platform image, the checksums), the same commit builds the same
// bytes, and an untracked file makes it refuse.
func TestReleaseOfATaggedCleanTree(t *testing.T) {
	t.Parallel()
	repo := fixtureRepo(t, "v"+system.ReleaseVersion)
	out := filepath.Join(t.TempDir(), "dist")
	if err := build(t, repo, out, false); err != nil {
		t.Fatal(err)
	}
	names := Names{Version: system.ReleaseVersion}
	for _, f := range []string{names.Archive("amd64"), names.Archive("arm64"), names.SBOM("amd64"), names.SBOM("arm64"), names.ImageTar(), ChecksumsFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("release output: %v", err)
		}
	}
	if err := verify(repo, out); err != nil {
		t.Fatalf("the release does not verify:\n%v", err)
	}

	again := filepath.Join(t.TempDir(), "dist")
	if err := build(t, repo, again, false); err != nil {
		t.Fatal(err)
	}
	sums, _ := os.ReadFile(filepath.Join(out, ChecksumsFile))
	sums2, _ := os.ReadFile(filepath.Join(again, ChecksumsFile))
	if !bytes.Equal(sums, sums2) {
		t.Errorf("two builds of one commit differ:\n%s\n%s", sums, sums2)
	}

	if err := os.WriteFile(filepath.Join(repo, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := build(t, repo, out, false)
	if err == nil || !strings.Contains(err.Error(), "clean tree") {
		t.Fatalf("a release of a tree with an untracked file: %v, want a refusal naming the clean tree", err)
	}
	if _, err := os.Stat(filepath.Join(out, ChecksumsFile)); err != nil {
		t.Errorf("a refused release removed the previous outputs: %v", err)
	}
}

// TestSnapshotOfAnUntaggedDirtyTree: without a tag a release is refused, and a snapshot of the
// same tree, dirty, is <ReleaseVersion>-SNAPSHOT-<commit> stamped dirty, and verifies.
func TestSnapshotOfAnUntaggedDirtyTree(t *testing.T) {
	t.Parallel()
	repo, out := snapshotFixture(t)
	err := build(t, repo, filepath.Join(t.TempDir(), "dist"), false)
	if err == nil || !strings.Contains(err.Error(), "no tag vX.Y.Z") || !strings.Contains(err.Error(), "clean tree") {
		t.Fatalf("a release of an untagged dirty tree: %v, want a refusal naming both", err)
	}
	version, err := outputVersion(out)
	if err != nil {
		t.Fatal(err)
	}
	short := runGit(t, repo, "rev-parse", "--short=12", "HEAD")
	if want := system.ReleaseVersion + "-SNAPSHOT-" + short; version != want {
		t.Errorf("snapshot version %q, want %q", version, want)
	}
	if err := verify(repo, out); err != nil {
		t.Fatalf("the snapshot does not verify:\n%v", err)
	}
	stamp, err := exec.Command(filepath.Join(out, Names{}.Binary(runtime.GOARCH)), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stamp), version) || !strings.Contains(string(stamp), "dirty") {
		t.Errorf("the snapshot binary says %q: want its version, stamped dirty", stamp)
	}
}

// TestVerifyFindsWhatIsWrong: the CI check fails on outputs missing an architecture (its
// archive, or its image), on an artifact whose bytes changed after the checksums, and on an
// SBOM that names another version of a module than go.mod (with checksums recomputed, so only
// the SBOM check can see it).
func TestVerifyFindsWhatIsWrong(t *testing.T) {
	t.Parallel()
	repo, good := snapshotFixture(t)
	version, err := outputVersion(good)
	if err != nil {
		t.Fatal(err)
	}
	names := Names{Version: version}
	artifacts := []string{names.Archive("amd64"), names.Archive("arm64"), names.SBOM("amd64"), names.SBOM("arm64"), names.ImageTar()}
	rehash := func(t *testing.T, out string, files []string) {
		t.Helper()
		if err := writeChecksums(out, files, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	for name, tc := range map[string]struct {
		change func(t *testing.T, out string)
		want   []string
	}{
		"no arm64 archive": {func(t *testing.T, out string) {
			os.Remove(filepath.Join(out, names.Archive("arm64")))
			rehash(t, out, slices.DeleteFunc(slices.Clone(artifacts), func(f string) bool { return f == names.Archive("arm64") }))
		}, []string{"linux/arm64: open"}},
		"no arm64 image": {func(t *testing.T, out string) {
			bin, err := os.ReadFile(filepath.Join(out, names.Binary("amd64")))
			if err != nil {
				t.Fatal(err)
			}
			os.RemoveAll(filepath.Join(out, ImageDir))
			spec := ImageSpec{Repository: DefaultImage, Version: version, Revision: runGit(t, repo, "rev-parse", "HEAD"), Binaries: map[string][]byte{"amd64": bin}}
			if err := WriteImage(spec, filepath.Join(out, ImageDir), filepath.Join(out, names.ImageTar())); err != nil {
				t.Fatal(err)
			}
			rehash(t, out, artifacts)
		}, []string{"platforms [linux/amd64], want [linux/amd64 linux/arm64]"}},
		"bytes changed after the checksums": {func(t *testing.T, out string) {
			f, err := os.OpenFile(filepath.Join(out, names.Archive("amd64")), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0})
			f.Close()
		}, []string{names.Archive("amd64") + ": sha256"}},
		"an SBOM off go.mod": {func(t *testing.T, out string) {
			path := filepath.Join(out, names.SBOM("arm64"))
			sbom, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			govmomi := regexp.MustCompile(`("name": "github.com/vmware/govmomi",\s*"version": ")v[^"]+`)
			if !govmomi.Match(sbom) {
				t.Fatalf("the arm64 SBOM does not list govmomi:\n%.2000s", sbom)
			}
			if err := os.WriteFile(path, govmomi.ReplaceAll(sbom, []byte("${1}v0.1.0")), 0o644); err != nil {
				t.Fatal(err)
			}
			rehash(t, out, artifacts)
		}, []string{`linux/arm64 SBOM: lists github.com/vmware/govmomi at "v0.1.0"`}},
	} {
		t.Run(name, func(t *testing.T) {
			out := copyOut(t, good)
			tc.change(t, out)
			err := verify(repo, out)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("verify says %v, want %q", err, w)
				}
			}
		})
	}
}

// TestCheckRelease: each reason a tree is not the release it claims is said, all at once.
func TestCheckRelease(t *testing.T) {
	t.Parallel()
	ok := ReleaseState{Tags: []string{"v0.2.0"}, Code: "0.2.0", Changelog: "0.2.0", Chart: "0.2.0"}
	if err := CheckRelease(ok); err != nil {
		t.Errorf("a clean tree on v0.2.0 with everything at 0.2.0: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*ReleaseState)
		want   []string
	}{
		"dirty":           {func(s *ReleaseState) { s.Dirty = true }, []string{"clean tree"}},
		"untagged":        {func(s *ReleaseState) { s.Tags = nil }, []string{"no tag vX.Y.Z", "v0.2.0"}},
		"other tags only": {func(s *ReleaseState) { s.Tags = []string{"latest", "v0.2.0-rc1"} }, []string{"no tag vX.Y.Z"}},
		"tag ahead":       {func(s *ReleaseState) { s.Tags = []string{"v0.3.0"} }, []string{"tagged v0.3.0, but system.ReleaseVersion is 0.2.0"}},
		"changelog":       {func(s *ReleaseState) { s.Changelog = "0.1.0" }, []string{`CHANGELOG.md is "0.1.0"`}},
		"chart":           {func(s *ReleaseState) { s.Chart = "0.1.0" }, []string{`appVersion is "0.1.0"`}},
		"all":             {func(s *ReleaseState) { *s = ReleaseState{Dirty: true, Code: "0.2.0"} }, []string{"clean tree", "no tag", "CHANGELOG.md", "appVersion"}},
	} {
		s := ok
		tc.change(&s)
		err := CheckRelease(s)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", name, err, w)
			}
		}
	}
	if got := ChangelogVersion("## [Unreleased]\n\n## [0.3.1] - 2026-12-07\n\n## [0.3.0]\n"); got != "0.3.1" {
		t.Errorf("ChangelogVersion = %q, want the newest release 0.3.1", got)
	}
}

// TestStampsWhatXvmbotReads: the release stamps every variable cmd/xvmbot/version.go declares,
// with the same -X flags as the Makefile's LDFLAGS (make build, make cross).
func TestStampsWhatXvmbotReads(t *testing.T) {
	t.Parallel()
	flags := ldflags("1.2.3", Revision{Commit: "abc", Time: time.Unix(0, 0)})
	src, err := os.ReadFile("../xvmbot/version.go")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	mk := regexp.MustCompile(`(?m)^LDFLAGS = (.*)$`).FindSubmatch(makefile)
	if mk == nil {
		t.Fatal("the Makefile has no LDFLAGS line")
	}
	for _, v := range []string{"version", "commit", "date", "treeState"} {
		if !regexp.MustCompile(`var [^\n]*\b` + v + `\b[^\n]* string`).Match(src) {
			t.Errorf("cmd/xvmbot/version.go has no string variable %s for the stamp", v)
		}
		for what, f := range map[string]string{"xvmrelease": flags, "the Makefile": string(mk[1])} {
			if !strings.Contains(f, "-X main."+v+"=") {
				t.Errorf("%s does not stamp main.%s: %s", what, v, f)
			}
		}
	}
	if want := "-s -w -X main.version=1.2.3 -X main.commit=abc -X main.date=1970-01-01T00:00:00Z -X main.treeState=clean"; flags != want {
		t.Errorf("ldflags %q, want %q", flags, want)
	}
}

// TestOutputDirectoryIsNotEmptiedBlindly: -out naming the module, or a directory holding
// anything a release build does not write, is refused and left as it was.
func TestOutputDirectoryIsNotEmptiedBlindly(t *testing.T) {
	t.Parallel()
	repo, _ := snapshotFixture(t)
	other := t.TempDir()
	keep := filepath.Join(other, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for out, want := range map[string]string{other: "holds notes.txt", repo: "holds the module", filepath.Join(repo, ".."): "holds the module"} {
		if err := build(t, repo, out, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-out %s: %v, want a refusal: %q", out, err, want)
		}
	}
	if data, err := os.ReadFile(keep); err != nil || string(data) != "mine" {
		t.Errorf("the refused -out lost its file: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		t.Errorf("the refused -out lost the module: %v", err)
	}
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image is built without Docker and without a base image: one layer on an empty image
// holds the static binary and the few files a non-root process needs. TLS roots are not a
// file in it: the binary embeds Mozilla's roots as Go's fallback (cmd/xvmbot/roots.go), used
// only when the system has none, as in this image; mount a bundle at SSL_CERT_FILE to trust
// others. The layout matches the Dockerfile's image (distroless static, nonroot), so compose,
// the chart and their health checks run either.

// Image paths and identity, the same as the Dockerfile's.
const (
	BinaryPath = "/usr/local/bin/xvmbot"
	DataDir    = "/var/lib/xvmbot"
	NonRoot    = 65532
)

// ImageSpec is what the image is made of.
type ImageSpec struct {
	Repository string
	Version    string
	Revision   string
	Created    time.Time
	Binaries   map[string][]byte // by GOARCH
}

// Labels are the image's org.opencontainers.image.* labels (and the index's annotations).
func (s ImageSpec) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "xvmbot",
		"org.opencontainers.image.description": "Slack ChatOps for vSphere Advanced Cross vCenter vMotion",
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
}

var (
	passwd = []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
	group  = []byte("root:x:0:\nnonroot:x:65532:\n")
)

// rootFS is the image's one layer.
func rootFS(bin []byte) []tarEntry {
	dir := func(name string, mode int64, owner int) tarEntry {
		return tarEntry{Name: name, Mode: mode, UID: owner, GID: owner, Dir: true}
	}
	return []tarEntry{
		dir("etc", 0o755, 0),
		{Name: "etc/group", Mode: 0o644, Data: group},
		{Name: "etc/passwd", Mode: 0o644, Data: passwd},
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, NonRoot),
		dir("tmp", 0o1777, 0),
		dir("usr", 0o755, 0),
		dir("usr/local", 0o755, 0),
		dir("usr/local/bin", 0o755, 0),
		{Name: "usr/local/bin/xvmbot", Mode: 0o755, Data: bin},
		dir("var", 0o755, 0),
		dir("var/lib", 0o755, 0),
		// The embedded NATS store (nats.data_dir) must be writable by the non-root user.
		dir("var/lib/xvmbot", 0o755, NonRoot),
	}
}

func archImage(s ImageSpec, arch string) (v1.Image, error) {
	var layerTar bytes.Buffer
	if err := writeTar(&layerTar, rootFS(s.Binaries[arch]), s.Created); err != nil {
		return nil, err
	}
	raw := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: s.Created.UTC()}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch, OS: "linux", Created: created, RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
			Entrypoint: []string{BinaryPath},
			Cmd:        []string{"serve", "--config", "/etc/xvmbot/xvmbot.yaml"},
			WorkingDir: DataDir,
			Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
			// 8080: Slack's endpoints (http.listen); 9090: /metrics, /healthz, /readyz.
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
			Volumes:      map[string]struct{}{DataDir: {}},
			Labels:       s.Labels(),
			// No shell in the image: the binary asks its own ops listener.
			Healthcheck: &v1.HealthConfig{Test: []string{"CMD", BinaryPath, "health"}, Interval: 30 * time.Second, Timeout: 10 * time.Second, Retries: 3},
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: created, CreatedBy: "xvmrelease", Comment: "xvmbot " + s.Version + " for linux/" + arch}})
}

// Index is the multi-arch image: one manifest per architecture, in Archs' order.
func (s ImageSpec) Index() (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, arch := range Archs {
		if _, ok := s.Binaries[arch]; !ok {
			continue
		}
		img, err := archImage(s, arch)
		if err != nil {
			return nil, fmt.Errorf("image for linux/%s: %w", arch, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, s.Labels()).(v1.ImageIndex), nil
}

// WriteImage writes the multi-arch image as an OCI image layout directory
// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md) whose index.json
// names it <repository>:<version>, and the same layout as one tar file (`docker load`,
// `crane push`, `skopeo copy oci-archive:` take it).
func WriteImage(s ImageSpec, dir, tarPath string) error {
	idx, err := s.Index()
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": s.Version,
		"io.containerd.image.name":          s.Repository + ":" + s.Version,
	})); err != nil {
		return err
	}
	return tarDir(dir, tarPath, s.Created)
}

// tarDir writes the files under dir into a tar at tarPath, in lexical order (WalkDir's), with fixed
// owner, modes and time.
func tarDir(dir, tarPath string, t time.Time) error {
	var entries []tarEntry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			entries = append(entries, tarEntry{Name: rel, Mode: 0o755, Dir: true})
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		entries = append(entries, tarEntry{Name: rel, Mode: 0o644, Data: data})
		return nil
	})
	if err != nil {
		return err
	}
	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	if err := writeTar(f, entries, t); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chtimes(tarPath, t, t)
}

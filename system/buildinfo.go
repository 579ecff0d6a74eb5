package system

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ReleaseVersion is the xvmbot release this source tree is: the newest release in
// CHANGELOG.md and the Helm chart's appVersion, which deploy/deploy_test.go keeps equal to
// it. A build the linker did not stamp (go build, go run) reports it with "-dev".
const ReleaseVersion = "0.1.0"

// Stamp is what the release build writes into the binary with the linker (cmd/xvmbot,
// -ldflags -X; cmd/xvmrelease, Dockerfile). Empty fields are filled from the build
// information Go records (vcs.revision, vcs.time, vcs.modified) where it has them.
type Stamp struct {
	Version   string // e.g. 0.2.0 (the git tag without its v)
	Commit    string // the full commit hash
	Date      string // when it was built or committed, RFC 3339
	TreeState string // "dirty" when the work tree had uncommitted changes, else "clean"
}

// Build is what a binary knows of how it was built.
type Build struct {
	Version, Revision, Date, GoVersion string
	Dirty                              bool
}

// ReadBuild returns the stamp, completed from the build information the binary carries.
func ReadBuild(s Stamp) Build {
	b := Build{Version: s.Version, Revision: s.Commit, Date: s.Date, Dirty: s.TreeState == "dirty", GoVersion: "unknown"}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.GoVersion = info.GoVersion
		for _, kv := range info.Settings {
			switch {
			case kv.Key == "vcs.revision" && b.Revision == "":
				b.Revision = kv.Value
			case kv.Key == "vcs.time" && b.Date == "":
				b.Date = kv.Value
			case kv.Key == "vcs.modified" && s.TreeState == "":
				b.Dirty = kv.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = ReleaseVersion + "-dev"
	}
	b.Version = strings.TrimPrefix(b.Version, "v")
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

// String is how `xvmbot version` prints it.
func (b Build) String() string {
	dirty := ""
	if b.Dirty {
		dirty = ", dirty"
	}
	return fmt.Sprintf("xvmbot %s (revision %s%s, built %s, %s)", b.Version, b.Revision, dirty, b.Date, b.GoVersion)
}

// registerBuildInfo exports xvm_build_info: 1, labelled with the build. The labels date and
// dirty extend the version, revision and goversion it always had.
func registerBuildInfo(reg prometheus.Registerer, b Build) {
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "xvm_build_info", Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "date", "dirty", "goversion"}).
		WithLabelValues(b.Version, b.Revision, b.Date, fmt.Sprint(b.Dirty), b.GoVersion).Set(1)
}

// WithStamp sets the build xvm_build_info reports (what the linker stamped in cmd/xvmbot).
func WithStamp(s Stamp) Option { return func(o *options) { o.stamp = s } }

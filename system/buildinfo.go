package system

import (
	"fmt"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Build is what a binary knows of how it was built.
type Build struct{ Version, Revision, GoVersion string }

// ReadBuild returns version (set by the linker in cmd/xvmbot) with the VCS revision and
// Go version the binary carries.
func ReadBuild(version string) Build {
	b := Build{Version: version, Revision: "unknown", GoVersion: "unknown"}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.GoVersion = info.GoVersion
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				b.Revision = s.Value
			}
		}
	}
	return b
}

// String is how `xvmbot version` prints it.
func (b Build) String() string {
	return fmt.Sprintf("xvmbot %s (revision %s, %s)", b.Version, b.Revision, b.GoVersion)
}

func registerBuildInfo(reg prometheus.Registerer, b Build) {
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "xvm_build_info", Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
}

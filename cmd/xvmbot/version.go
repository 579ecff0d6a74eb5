package main

import (
	"fmt"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

type build struct{ Version, Revision, GoVersion string }

func readBuild() build {
	b := build{Version: version, Revision: "unknown", GoVersion: "unknown"}
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

func buildInfo() string {
	b := readBuild()
	return fmt.Sprintf("xvmbot %s (revision %s, %s)", b.Version, b.Revision, b.GoVersion)
}

func registerBuildInfo(reg prometheus.Registerer) {
	b := readBuild()
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "xvm_build_info", Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
}

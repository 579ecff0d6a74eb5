package main

import "github.com/xvmbot/xvmbot/system"

// Set at build time by the release build (cmd/xvmrelease, Makefile, Dockerfile):
//
//	-ldflags "-X main.version=0.2.0 -X main.commit=$(git rev-parse HEAD)
//	          -X main.date=2026-12-07T13:00:00Z -X main.treeState=clean"
//
// Unset, they come from the build information Go records, and the version is
// system.ReleaseVersion with "-dev".
var version, commit, date, treeState string

func stamp() system.Stamp {
	return system.Stamp{Version: version, Commit: commit, Date: date, TreeState: treeState}
}

func buildInfo() string { return system.ReadBuild(stamp()).String() }

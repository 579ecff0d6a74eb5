package main

import "github.com/xvmbot/xvmbot/system"

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func buildInfo() string { return system.ReadBuild(version).String() }

// Command tinybot stands in for xvmbot in xvmrelease's tests: it links a little of the
// modules the release checks for (NATS server, govmomi, the fallback roots) and prints its
// stamp as `xvmbot version` does, so the whole pipeline runs on it in seconds.
package main

import (
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/vmware/govmomi/vim25/xml"
	_ "golang.org/x/crypto/x509roots/fallback"
)

var version, commit, date, treeState string

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Printf("xvmbot %s (revision %s, built %s, %s)\n", version, commit, date, treeState)
		return
	}
	_, err := conf.Parse("a: 1")
	fmt.Println(xml.Header, err)
}

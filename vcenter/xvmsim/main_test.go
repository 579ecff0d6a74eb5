package xvmsim

import (
	"os"
	"testing"

	"github.com/vmware/govmomi/simulator"
)

// TestMain makes vcsim's file deletion, which its Destroy task starts and does not wait
// for, last 100ms in every test of this package: any section of the emulation that leaves
// it running then overlaps the next create or destroy, which `go test -race` reports, and
// TestDestroyWaitsForItsFiles sees the files still there. It closes the shared lab
// (lab_test.go) once every test has run.
func TestMain(m *testing.M) {
	simulator.TaskDelay.MethodDelay = map[string]int{"DeleteDatastoreFile": 100}
	code := m.Run()
	if shared.lab != nil {
		shared.lab.Close()
	}
	os.Exit(code)
}

package system

import (
	"fmt"
	"os"
	"testing"
)

// A worker's default name is what its restart keeps, so the restarted process takes back
// its jobs at once: against an external NATS it comes from the host and the ops address
// (which no other process of the host can hold at the same time), not the process id.
func TestWorkerNameSurvivesARestart(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	pid := fmt.Sprintf("%s-%d", host, os.Getpid())
	for _, tc := range []struct {
		configured string
		embedded   bool
		ops        string
		want       string
	}{
		{"worker-a", false, ":9090", "worker-a"},
		{"", true, ":9090", host},
		{"", false, ":9090", host + "-9090"},
		{"", false, "10.0.0.5:9091", host + "-10-0-0-5-9091"},
		{"", false, "[::1]:9090", host + "-1-9090"},
		{"", false, "127.0.0.1:0", pid}, // a random port: only the pid tells processes apart
	} {
		if got := workerName(tc.configured, tc.embedded, tc.ops); got != tc.want {
			t.Errorf("workerName(%q, %v, %q) = %q, want %q", tc.configured, tc.embedded, tc.ops, got, tc.want)
		}
	}
}

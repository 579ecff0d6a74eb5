package deploy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/events"
)

// TestContractsDocumented keeps docs/contracts.md, the one list of the outer contracts and
// of what xvmbot added to them, complete: every config key, every metric the code
// registers, every NATS stream, consumer and bucket, and every command of the binary is
// on it. A new one added without saying so fails here.
func TestContractsDocumented(t *testing.T) {
	doc := string(readFile(t, "../docs/contracts.md"))
	named := func(name string) bool {
		return regexp.MustCompile("`[^`]*\\b" + regexp.QuoteMeta(name) + "\\b[^`]*`").MatchString(doc)
	}
	schema := configSchema(t)
	for _, path := range schema.paths("", "Config") {
		leaf := path[strings.LastIndex(path, ".")+1:]
		if secret, ok := strings.CutSuffix(leaf, "_file"); ok && named(secret) {
			continue // every secret x has x_file: the rule is stated once
		}
		if !named(leaf) {
			t.Errorf("docs/contracts.md does not list the config key %s", path)
		}
	}
	registered := metricsRegistered(t)
	for name := range registered {
		if !named(name) {
			t.Errorf("docs/contracts.md does not list the metric %s", name)
		}
	}
	for _, name := range []string{events.StreamJobs, events.SubjectJobs, events.ConsumerWorkers, events.StreamEvents,
		events.SubjectEvents, events.ConsumerBot, events.BucketRequests, events.BucketJobs, events.BucketLeases,
		events.BucketSlots, events.BucketDeliveries, events.BucketDigests} {
		if !named(name) {
			t.Errorf("docs/contracts.md does not list the NATS name %s", name)
		}
	}
	// The commands the binary dispatches on (cmd/xvmbot/main.go's switch).
	main := string(readFile(t, "../cmd/xvmbot/main.go"))
	sw := main[strings.Index(main, "switch cmd {"):]
	cmds := regexp.MustCompile(`case ((?:"[a-z-]+",? ?)+):`).FindAllStringSubmatch(sw, -1)
	if len(cmds) < 6 {
		t.Fatalf("found only %d cases in the binary's command switch", len(cmds))
	}
	for _, c := range cmds {
		for _, name := range regexp.MustCompile(`"([a-z][a-z-]*)"`).FindAllStringSubmatch(c[1], -1) {
			if !named(name[1]) {
				t.Errorf("docs/contracts.md does not list the command %s", name[1])
			}
		}
	}
}

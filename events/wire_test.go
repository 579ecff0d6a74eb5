package events

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// The fixtures under testdata were written by the types as they were before the move's
// placement, networks and disks became one type: a queued job, a final event and a job
// record. Messages and records written then are read now, and written back with the same
// names and values (the order of an object's names is not part of the format).
func TestWireFormatsReadAndWriteAsBefore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		v    any
	}{
		{"job.json", new(Job)},
		{"event.json", new(Event)},
		{"jobrecord.json", new(JobRecord)},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			old, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			old = bytes.TrimSpace(old)
			if err := json.Unmarshal(old, tc.v); err != nil {
				t.Fatal(err)
			}
			again, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			var x, y any
			_ = json.Unmarshal(old, &x)
			_ = json.Unmarshal(again, &y)
			if !reflect.DeepEqual(x, y) {
				t.Errorf("written back otherwise:\n old %s\n new %s", old, again)
			}
		})
	}
}

package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// A list the wizard cuts says so above its options, and how to narrow it; a folder whose
// path is too long to be an option is counted, not silently dropped.
func TestWizardListsSayWhenTheyAreCut(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var extra []string
	for i := range maxChoices + 10 {
		extra = append(extra, fmt.Sprintf("team-%03d", i))
	}
	extra = append(extra, "team-"+strings.Repeat("x", maxOptionValue))
	e.planner.invMu.Lock()
	e.planner.extraFolders = extra
	e.planner.invMu.Unlock()
	view := openFilledWizard(ctx, t, e, "migrate")
	values, groups, err := e.ws.SuggestGroups(ctx, requester, view.ID, wizFolder, "team")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("First %d shown, 1 too long: type more, or the command", maxChoices)
	if len(values) != maxChoices || !slices.Equal(groups, []string{want}) {
		t.Fatalf("%d folders offered under %q, want %d under %q", len(values), groups, maxChoices, want)
	}
	// Narrowed, the list is whole again and says nothing.
	values, groups, err = e.ws.SuggestGroups(ctx, requester, view.ID, wizFolder, "team-00")
	if err != nil {
		t.Fatal(err)
	}
	if len(values) != 10 || len(groups) != 0 {
		t.Fatalf("narrowed: %v under %q", values, groups)
	}
}

func TestChoiceOptionsSayWhatWasLeftOut(t *testing.T) {
	t.Parallel()
	id := func(c choice) string { return c.Value }
	many := make([]choice, maxChoices+1)
	for i := range many {
		many[i] = choice{Value: fmt.Sprintf("pg-%d", i)}
	}
	long := []choice{{Value: strings.Repeat("f", maxOptionValue+1)}, {Value: "ok"}}
	for _, tc := range []struct {
		name string
		in   []choice
		n    int
		cut  string
	}{
		{"whole", many[:maxChoices], maxChoices, ""},
		{"one too many", many, maxChoices, fmt.Sprintf("First %d shown: type more of the name", maxChoices)},
		{"too long", long, 1, "1 name too long to list: type the command"},
	} {
		opts, cut := choiceOptions(tc.in, id)
		if len(opts) != tc.n || cut != tc.cut || len([]rune(cut)) > maxChoiceLabel {
			t.Errorf("%s: %d options, %q", tc.name, len(opts), cut)
		}
	}
}

// VMs with more source networks than the wizard has rows for: it says how many are left
// and how to map them.
func TestWizardSaysWhenNetworksAreCut(t *testing.T) {
	t.Parallel()
	var vm vcenter.VM
	for i := range maxWizardNetworks + 3 {
		vm.NICs = append(vm.NICs, vcenter.NIC{Network: fmt.Sprintf("net-%02d", i)})
	}
	vm.NICs = append(vm.NICs, vcenter.NIC{Network: "net-00"}) // counted once
	nets, left := networksOf(&vcenter.Plan{VMs: []vcenter.VM{vm}})
	if len(nets) != maxWizardNetworks || left != 3 || nets[0] != "net-00" {
		t.Fatalf("%d rows, %d left", len(nets), left)
	}
	ws := wizardState{Direction: "migrate", Channel: "C0OPS", Home: "vc-east", VCenters: fxEndpoints(), Source: "vc-east", Target: "vc-west",
		VMs: []string{"web-01"}, Networks: nets, NetsLeft: left, NetTarget: map[string]string{}, Disk: string(move.Same)}
	v := RenderWizard(ws)
	checkGolden(t, "modal_wizard_networks_cut", v)
	if n := len(v.Blocks.BlockSet); n > 100 {
		t.Fatalf("%d blocks", n)
	}
}

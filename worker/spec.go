package worker

import (
	"slices"
	"strings"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// MoveSpec is the vCenter move a job asks for: its VM, from and to its vCenters, placed
// as the job says.
func MoveSpec(j events.Job) vcenter.MoveSpec {
	return vcenter.MoveSpec{VMs: []string{j.VM}, Source: j.SourceVC, Target: j.TargetVC, Placement: j.Placement.Clone()}
}

// plannedMove is what the job record keeps of a move as it starts: where the plan puts
// the VM. Where the VM was and its tags follow (withSource).
func plannedMove(plan *vcenter.Plan, vm string) *events.JobMove {
	mv := &events.JobMove{Host: plan.Host, Pool: plan.Pool, Datastore: plan.Datastore, Folder: plan.Folder,
		Disks: slices.Clone(plan.Spec.Disks)}
	for _, v := range plan.VMs {
		if v.Name == vm {
			for _, nic := range v.NICs {
				mv.NICs = append(mv.NICs, events.PlannedNIC{Label: nic.Label, Target: nic.Target})
			}
		}
	}
	return mv
}

// withSource records in mv where the VM was (nil: it could not be read) and its tags and
// custom attributes (or why they could not be read).
func withSource(mv *events.JobMove, origin *vcenter.Where, md *vcenter.Metadata, mdErr error) {
	mv.Unread = false
	if origin != nil {
		o := origin.Origin()
		mv.Origin, mv.OriginNICs = &o, origin.Networks
	}
	switch {
	case mdErr != nil:
		mv.MetadataError = oneLine(mdErr)
	case md != nil:
		mv.Attributes = md.Attributes
		for _, t := range md.Tags {
			mv.Tags = append(mv.Tags, events.Tag{Category: t.Category, Name: t.Name})
		}
	}
}

// oneLine is an error's text on one line, as a Slack message line shows it.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

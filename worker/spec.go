package worker

import (
	"strings"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// moveSpec is the vCenter move a job asks for: the one place a job's placement is
// mapped to vcenter's spec.
func moveSpec(j events.Job) vcenter.MoveSpec {
	nets := make([]vcenter.NetworkMap, 0, len(j.Networks))
	for _, n := range j.Networks {
		nets = append(nets, vcenter.NetworkMap{Source: n.Source, Target: n.Target})
	}
	var disks []vcenter.DiskSpec
	for _, d := range j.Disks {
		disks = append(disks, vcenter.DiskSpec{Disk: d.Disk, Datastore: d.Datastore, Format: vcenter.DiskFormat(d.DiskFormat)})
	}
	return vcenter.MoveSpec{
		VMs: []string{j.VM}, Source: j.SourceVC, Target: j.TargetVC,
		Cluster: j.Cluster, Host: j.Host, Pool: j.Pool, Datastore: j.Datastore, Folder: j.Folder,
		Networks: nets, DiskFormat: vcenter.DiskFormat(j.DiskFormat), Disks: disks, Priority: j.Priority,
	}
}

// plannedMove is what the job record keeps of a move as it starts.
func plannedMove(plan *vcenter.Plan, vm string, origin *vcenter.Where, md *vcenter.Metadata, mdErr error) *events.JobMove {
	mv := &events.JobMove{Host: plan.Host, Pool: plan.Pool, Datastore: plan.Datastore, Folder: plan.Folder}
	for _, d := range plan.Spec.Disks {
		mv.Disks = append(mv.Disks, events.DiskPlacement{Disk: d.Disk, Datastore: d.Datastore, DiskFormat: string(d.Format)})
	}
	for _, v := range plan.VMs {
		if v.Name == vm {
			for _, nic := range v.NICs {
				mv.NICs = append(mv.NICs, events.PlannedNIC{Label: nic.Label, Target: nic.Target})
			}
		}
	}
	if origin != nil {
		mv.Origin = &events.Placement{VCenter: origin.VCenter, Cluster: origin.Cluster, Host: origin.Host, Pool: origin.Pool,
			Datastore: origin.Datastore, Folder: origin.Folder, DiskFormat: string(origin.DiskFormat)}
		for _, d := range origin.Disks {
			if d.Datastore != origin.Datastore || d.Format != origin.DiskFormat {
				p := events.DiskPlacement{Disk: d.Number, DiskFormat: string(d.Format)}
				if d.Datastore != origin.Datastore {
					p.Datastore = d.Datastore
				}
				mv.Origin.Disks = append(mv.Origin.Disks, p)
			}
		}
		mv.OriginNICs = origin.Networks
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
	return mv
}

// oneLine is an error's text on one line, as a Slack message line shows it.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

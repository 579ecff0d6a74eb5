package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// afterMove finishes a move whose task succeeded, on whichever worker saw it end: it
// verifies the placement, copies the tags and custom attributes, and returns where the
// VM was, for undo. mv is nil only when the worker that started the move stopped before
// it could record it.
func (jr *jobRun) afterMove(ctx context.Context, mv *events.JobMove) (success, error) {
	w, j, log := jr.w, jr.j, jr.log
	if mv == nil {
		log.Warn("the move's plan was not recorded; placement not verified, tags not copied, no undo")
		return success{note: "its placement was not verified and its tags and custom attributes were not copied " +
			"(the worker that started the move stopped before recording it): check them in " + j.TargetVC}, nil
	}
	var done success
	var unverified string
	var err error
	if done.origin, unverified, err = w.verify(ctx, j, mv, log); err != nil {
		return done, err // the origin too: the VM moved, undo can take it back
	}
	var notes []string
	for _, n := range []string{unverified, w.copyMetadata(ctx, j, mv, log)} {
		if n != "" {
			notes = append(notes, n)
		}
	}
	done.note = strings.Join(notes, "; ")
	return done, nil
}

// success is what a move that this worker watched to its end adds to the succeeded event.
type success struct {
	origin *move.Origin // where the VM was, for /xvm undo
	note   string       // a warning (tags not copied)
}

// copyMetadata applies the source's tags and custom attributes, as recorded when the
// move started, to the moved VM. A failure does not fail the job: the VM runs where it was
// approved to; it becomes a warning on the succeeded job.
func (w *Worker) copyMetadata(ctx context.Context, j events.Job, mv *events.JobMove, log *slog.Logger) string {
	if mv.Unread {
		return "tags and custom attributes not copied, and /xvm undo not offered: the worker that started the move stopped " +
			"before it read them, and the move ended before another could: check them in " + j.TargetVC
	}
	if mv.MetadataError != "" {
		return "tags and custom attributes not copied: they could not be read before the move: " + mv.MetadataError
	}
	md := &vcenter.Metadata{Attributes: mv.Attributes}
	for _, t := range mv.Tags {
		md.Tags = append(md.Tags, vcenter.Tag{Category: t.Category, Name: t.Name})
	}
	err := w.tags.ApplyMetadata(ctx, j.TargetVC, j.VM, md)
	if err == nil || ctx.Err() != nil {
		return ""
	}
	log.Warn("tags and custom attributes not copied", "err", err)
	return "tags and custom attributes not copied: " + oneLine(err)
}

// verify checks that the VM is where the request said, and returns where it was, for undo. A
// relocation whose task succeeded but left the VM elsewhere (pool, datastore, folder,
// networks) is reported as a failure: the people who approved one placement must learn
// that another one happened. The host is the exception: DRS moves VMs within their
// cluster at any time, so another host of the approved cluster is as approved, and a host
// outside it is a warning (note), not a failure. So is the datastore when the request named
// a datastore cluster, which Storage DRS balances.
//
// If where the VM is now cannot be read, the move is not failed (vCenter said it
// succeeded), but note says what was not done.
func (w *Worker) verify(ctx context.Context, j events.Job, mv *events.JobMove, log *slog.Logger) (origin *move.Origin, note string, err error) {
	after, err := w.look.Where(ctx, j.TargetVC, j.VM)
	if err != nil {
		log.Warn("could not verify the placement after the move", "err", err)
		return nil, fmt.Sprintf("its placement could not be read to verify it (%s), so /xvm undo is not offered: check it in %s",
			oneLine(err), j.TargetVC), nil
	}
	var off []string
	want := func(what, got, exp string) {
		if exp != "" && exp != "/" && got != strings.Trim(exp, "/") {
			off = append(off, fmt.Sprintf("%s is %q, not %q", what, got, exp))
		}
	}
	// DRS may move a VM as soon as it arrives: another host of the cluster the request
	// named is as approved, and a host elsewhere is a fact to report, not a failed move.
	var notes []string
	if mv.Host != "" && after.Host != mv.Host && (j.Cluster == "" || after.Cluster != j.Cluster) {
		notes = append(notes, fmt.Sprintf("%s now runs on host %s%s, not on %s%s where it was placed: DRS or an administrator moved it after it arrived; check that it may run there",
			j.VM, after.Host, inCluster(after.Cluster), mv.Host, inCluster(j.Cluster)))
		log.Warn("the VM runs outside the host and cluster it was placed on", "host", after.Host, "cluster", after.Cluster, "placed_on", mv.Host)
	}
	want("resource pool", after.Pool, mv.Pool)
	// Storage DRS moves files among the datastores of a datastore cluster as DRS moves VMs
	// among hosts: when the request named a datastore cluster (and the plan chose one of
	// its datastores), another datastore of it is as approved, and one outside it a fact
	// to report.
	store := func(what, got, planned, asked string) {
		if planned == "" || got == planned {
			return
		}
		if asked == "" || asked == planned { // a datastore was named: it is what was approved
			want(what, got, planned)
			return
		}
		if pod := after.DatastoreClusters[got]; pod != asked {
			notes = append(notes, fmt.Sprintf("%s is %s%s, not in datastore cluster %s where it was placed (on %s): Storage DRS or an administrator moved it after it arrived; check that it may stay there",
				what, got, inPod(pod), asked, planned))
			log.Warn("files outside the datastore cluster they were placed in", "what", what, "datastore", got, "datastore_cluster", pod, "placed_in", asked)
		}
	}
	store(j.VM+"'s datastore", after.Datastore, mv.Datastore, j.Datastore)
	want("folder", after.Folder, mv.Folder)
	for _, d := range mv.Disks {
		i := slices.IndexFunc(after.Disks, func(w move.Disk) bool { return w.Disk == d.Disk })
		if d.Datastore != "" && i >= 0 {
			asked := ""
			if k := slices.IndexFunc(j.Disks, func(a move.Disk) bool { return a.Disk == d.Disk }); k >= 0 {
				asked = j.Disks[k].Datastore
			}
			store(fmt.Sprintf("Hard disk %d's datastore", d.Disk), after.Disks[i].Datastore, d.Datastore, asked)
		}
	}
	note = strings.Join(notes, "; ")
	// The storage policy asked for (the VM's, and a disk's own): "" asked for none, and
	// an empty reading means the policy service did not answer, which proves nothing.
	policy := func(what, got, asked string) {
		if asked != "" && got != "" && got != asked {
			off = append(off, fmt.Sprintf("%s is %q, not %q", what, got, asked))
		}
	}
	policy("the storage policy", after.Policy, j.Policy)
	for _, d := range after.Disks {
		asked := j.Policy
		if k := slices.IndexFunc(j.Disks, func(a move.Disk) bool { return a.Disk == d.Disk }); k >= 0 && j.Disks[k].Policy != "" {
			asked = j.Disks[k].Policy
		}
		policy(fmt.Sprintf("Hard disk %d's storage policy", d.Disk), d.Policy, asked)
	}
	for i, nic := range mv.NICs {
		if i < len(after.Networks) && nic.Target != "" && after.Networks[i] != nic.Target {
			off = append(off, fmt.Sprintf("%s is on %q, not %q", nic.Label, after.Networks[i], nic.Target))
		}
	}
	if mv.Origin != nil {
		o := mv.Origin.Clone()
		o.Networks = move.NetworksBack(after.Networks, mv.OriginNICs)
		origin = &o
	}
	if len(off) > 0 {
		return origin, note, &vcenter.Fault{VCenter: j.TargetVC, VM: j.VM, Step: stepVerify, Kind: vcenter.KindPlacementMismatch,
			Message: fmt.Sprintf("%s moved to %s, but not as approved: %s", j.VM, j.TargetVC, strings.Join(off, "; ")),
			Hint:    fmt.Sprintf("check %s in %s; /xvm undo %s asks for the way back", j.VM, j.TargetVC, j.ID)}
	}
	return origin, note, nil
}

// inPod is " (datastore cluster p)", or "" for none.
func inPod(p string) string {
	if p == "" {
		return ""
	}
	return " (datastore cluster " + p + ")"
}

// inCluster is " (cluster c)", or "" for no cluster.
func inCluster(c string) string {
	if c == "" {
		return ""
	}
	return " (cluster " + c + ")"
}

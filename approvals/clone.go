package approvals

import "slices"

// Clone returns a deep copy of r: nothing the copy holds is shared with r, so either may
// be changed without the other seeing it. Stores use it to hand out a record decoded
// once instead of decoding it on every read.
func (r *Request) Clone() *Request {
	if r == nil {
		return nil
	}
	c := *r
	c.VMs = slices.Clone(r.VMs)
	c.Placement = r.Placement.Clone()
	c.Review.Placement = r.Review.Placement.Clone()
	c.Review.OtherHosts = slices.Clone(r.Review.OtherHosts)
	c.Review.VMs = slices.Clone(r.Review.VMs)
	for i := range c.Review.VMs {
		c.Review.VMs[i].Resolved = c.Review.VMs[i].Resolved.Clone()
	}
	c.Review.Findings = slices.Clone(r.Review.Findings)
	c.Approvals = slices.Clone(r.Approvals)
	c.AskedOf = slices.Clone(r.AskedOf)
	c.DMs = slices.Clone(r.DMs)
	c.Reminded = slices.Clone(r.Reminded)
	c.Rejection = cloneDecision(r.Rejection)
	c.Cancellation = cloneDecision(r.Cancellation)
	if r.Approval != nil {
		a := *r.Approval
		a.Payload, a.Sig = slices.Clone(a.Payload), slices.Clone(a.Sig)
		c.Approval = &a
	}
	if r.Tally != nil {
		t := *r.Tally
		t.Started, t.Ended = slices.Clone(t.Started), slices.Clone(t.Ended)
		t.Failed, t.Succeeded = slices.Clone(t.Failed), slices.Clone(t.Succeeded)
		c.Tally = &t
	}
	c.Jobs = slices.Clone(r.Jobs)
	for i := range c.Jobs {
		if o := c.Jobs[i].Origin; o != nil {
			oc := o.Clone()
			c.Jobs[i].Origin = &oc
		}
	}
	return &c
}

func cloneDecision(d *Decision) *Decision {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

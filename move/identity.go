package move

// VM is a VM as a move binds it: its name, and the managed object id it had in the source
// vCenter when the request was checked ("vm-42"). The id is its identity: a VM renamed,
// or removed and replaced by another of the same name, is not the one approved.
type VM struct {
	Name string `json:"name"`
	// Ref is "" only where nothing was resolved yet (a VM the pre-flight did not find).
	Ref string `json:"ref,omitempty"`
}

// VCenter is a vCenter as a move binds it: the configured name, and the instance UUID
// the vCenter reports about itself, which a vCenter re-installed or replaced behind the
// same address does not keep.
type VCenter struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// Package xvmsim runs several independent simulated vCenters in one process,
// on top of govmomi's simulator (vcsim), and emulates Advanced Cross vCenter
// vMotion between them.
//
// The stock simulator accepts RelocateVM_Task with a ServiceLocator but
// ignores it, so a test that trusted it would prove nothing. A Lab therefore
// intercepts cross-vCenter relocations on the source side, validates the
// locator the way vCenter does, recreates the VM in the target over real SOAP
// and only then removes it from the source. Every VC is reached over loopback
// https with its own certificate, credentials and instance UUID, so callers
// exercise the same code paths they would against real vCenters.
package xvmsim

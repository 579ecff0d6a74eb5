// Package move is what a move of a VM asks for, written once: where it goes (compute,
// pool, datastore, folder), which portgroup each NIC lands on, the format and datastore of
// its disks, and the vMotion priority. The request, the queued job, the planner's spec
// and the origin that undo goes back to all embed these types, so an option added here
// travels everywhere without a mapper.
//
// The types are names as people type them in chat, never resolved objects, and their
// JSON is part of what is stored and signed: field names never change. The package
// imports nothing but the standard library.
package move

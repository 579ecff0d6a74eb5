// Package config is xvmbot's one YAML file: its types, how it is read (${ENV}
// references, secrets from *_file, relative paths from the file's folder) and what it
// must say before anything starts.
//
// Each section defaults and validates itself: a section type X has DefaultXConfig, an
// UnmarshalYAML that starts from it, and a validate method. A key that is not one, or a
// value of the wrong kind, fails the load with its path in the file (nats.ack_wait,
// vcenters[1].home), never with a Go type name. No error shows a secret's value.
package config

package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/xvmbot/xvmbot/system"
)

// runKeygen writes a new approval signing key to out and prints its public key.
func runKeygen(out string, stdout io.Writer) error {
	if out == "" {
		return errors.New("keygen: --out FILE is required (the file must not exist; it is written readable by its owner only)")
	}
	pub, err := system.WriteSigningKey(out)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "approval signing key written to %s (keep it secret: give it to the bot only)\n", out)
	fmt.Fprintf(stdout, "public key, for every worker's approvals.trusted_keys:\n%s\n", pub)
	return nil
}

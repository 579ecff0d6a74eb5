package events

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// authDirName is where, inside its data dir, the embedded server keeps the nkey seeds of
// the credentials other processes connect with.
const authDirName = "auth"

// SeedFile is the nkey seed a process of role r uses (as nats.nkey_file) to connect to an
// embedded server that listens (nats.listen) on dataDir. The server creates it on first
// start, or uses the one an operator put there.
func SeedFile(dataDir string, r Role) string {
	return filepath.Join(dataDir, authDirName, string(r)+".nk")
}

// embeddedAuth is who may connect to an embedded server that listens beyond its process:
// a bot and a worker with their seed files, and two users whose seeds exist only in this
// process's memory (no file, no network: in-process connections only): the server's own
// process as serve, and an unrestricted one for the process's own tooling.
type embeddedAuth struct {
	users map[Role]nkeys.KeyPair // bot, worker (from files), serve (in memory)
	admin nkeys.KeyPair
}

// newEmbeddedAuth loads or creates the bot's and worker's seeds under dir and makes the
// in-memory ones.
func newEmbeddedAuth(dir string) (*embeddedAuth, error) {
	a := &embeddedAuth{users: map[Role]nkeys.KeyPair{}}
	if err := os.MkdirAll(filepath.Join(dir, authDirName), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Join(dir, authDirName), err)
	}
	for _, r := range []Role{RoleBot, RoleWorker} {
		kp, err := loadOrCreateSeed(SeedFile(dir, r))
		if err != nil {
			return nil, err
		}
		a.users[r] = kp
	}
	var err error
	if a.users[RoleServe], err = nkeys.CreateUser(); err != nil {
		return nil, fmt.Errorf("create in-process nkey: %w", err)
	}
	if a.admin, err = nkeys.CreateUser(); err != nil {
		return nil, fmt.Errorf("create in-process nkey: %w", err)
	}
	return a, nil
}

// loadOrCreateSeed reads a user nkey seed, or writes a new one (mode 0600) if the file
// does not exist. A seed others can read is refused, as ssh refuses such a key.
func loadOrCreateSeed(path string) (nkeys.KeyPair, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("create nkey %s: %w", path, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("create nkey %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("write nkey seed: %w", err)
		}
		_, werr := f.Write(append(seed, '\n'))
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("write nkey seed %s: %w", path, err)
		}
		return kp, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read nkey seed: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read nkey seed: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("nkey seed %s can be read by others (mode %04o): run chmod 600 on it", path, st.Mode().Perm())
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("nkey seed %s: %w (want a user seed starting with SU)", path, err)
	}
	if pub, _ := kp.PublicKey(); !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("nkey seed %s is not a user seed (want one starting with SU)", path)
	}
	return kp, nil
}

// serverUsers are the nkey users the server accepts, each with its role's permissions.
func (a *embeddedAuth) serverUsers() []*server.NkeyUser {
	inProcess := map[string]struct{}{jwt.ConnectionTypeInProcess: {}}
	var users []*server.NkeyUser
	for _, r := range []Role{RoleBot, RoleWorker, RoleServe} {
		pub, _ := a.users[r].PublicKey()
		p := RolePermissions(r)
		u := &server.NkeyUser{Nkey: pub, Permissions: serverPermissions(&p)}
		if r == RoleServe {
			u.AllowedConnectionTypes = inProcess
		}
		users = append(users, u)
	}
	pub, _ := a.admin.PublicKey()
	return append(users, &server.NkeyUser{Nkey: pub, AllowedConnectionTypes: inProcess})
}

// nkeyOption authenticates a connection with kp, which never leaves this process.
func nkeyOption(kp nkeys.KeyPair) nats.Option {
	pub, _ := kp.PublicKey()
	return nats.Nkey(pub, kp.Sign)
}

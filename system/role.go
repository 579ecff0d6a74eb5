package system

import "github.com/xvmbot/xvmbot/events"

// Role says which halves of xvmbot a process runs.
type Role int

// The roles, one per command that runs xvmbot.
const (
	RoleServe  Role = iota // serve: bot + worker
	RoleBot                // bot: Slack side only
	RoleWorker             // worker: relocations only
)

// RoleOf is the role of a command: "bot", "worker", anything else serve.
func RoleOf(cmd string) Role {
	switch cmd {
	case "bot":
		return RoleBot
	case "worker":
		return RoleWorker
	}
	return RoleServe
}

// String is the command that runs the role.
func (r Role) String() string { return [...]string{"serve", "bot", "worker"}[r] }

// NATSRole is the role's NATS identity: what its credential may do and its inbox prefix.
func (r Role) NATSRole() events.Role {
	return [...]events.Role{events.RoleServe, events.RoleBot, events.RoleWorker}[r]
}

func (r Role) runsBot() bool    { return r == RoleServe || r == RoleBot }
func (r Role) runsWorker() bool { return r == RoleServe || r == RoleWorker }

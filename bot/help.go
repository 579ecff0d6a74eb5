package bot

import (
	"fmt"
	"strings"
)

// commandDef declares one /xvm command: the help text and Usage are generated from these.
type commandDef struct {
	Verb        string
	Usage       string // after "/xvm "
	Description string
	Options     bool     // takes the placement options
	Examples    []string // after "/xvm "; each must parse (see TestHelpExamplesParse)
}

// commands is the /xvm command table, in the order help lists it.
var commands = []commandDef{
	{
		Verb:        VerbMigrate,
		Usage:       "migrate <vm>[,<vm>…] [from <vcenter>] to <vcenter> [options]",
		Description: "Move VMs from this vCenter (or from <vcenter>) to another vCenter, after approval. With no arguments, opens the wizard.",
		Options:     true,
		Examples: []string{
			"migrate web-01 to vc-west",
			`migrate web-01,web-02,"web 03" to vc-west cluster=prod-01 datastore=ssd-01 disk=thin`,
			`migrate db-* from vc-east to vc-west host=esx-12.west pool=databases folder="migrated/db" network=app-pg priority=high`,
			`migrate db-01 to vc-west datastore=ssd-01 disk=thin disk2=ssd-02:eager`,
			`migrate db-01 to vc-west datastore=ssd-01 policy=gold-policy disk2=ssd-02::silver-policy`,
			`migrate app-01 to vc-west network="VM Network":app-pg,backup:backup-pg`,
		},
	},
	{
		Verb:        VerbImport,
		Usage:       "import <vm>[,<vm>…] from <vcenter> [to <vcenter>] [options]",
		Description: "Pull VMs from a remote vCenter into this one (or into <vcenter>), after approval. With no arguments, opens the wizard.",
		Options:     true,
		Examples: []string{
			"import web-01 from vc-east",
			`import web-01,web-02 from vc-east to vc-west cluster=prod-01 folder="imported/web apps" disk=same`,
		},
	},
	{
		Verb:        VerbCheck,
		Usage:       "check migrate|import <vm>[,<vm>…] … [options]",
		Description: "Run the pre-flight checks of a migrate or import and show the review; nothing is queued. With no VMs, opens the wizard in check mode.",
		Options:     true,
		Examples: []string{
			"check migrate web-01 to vc-west datastore=ssd-01",
			"check import web-01 from vc-east",
		},
	},
	{Verb: VerbStatus, Usage: "status <request-or-job>", Description: "Show a request or one of its jobs.", Examples: []string{"status xvm-k3m9q2", "status xvm-k3m9q2-01"}},
	{Verb: VerbList, Usage: "list", Description: "List open and recent requests.", Examples: []string{"list"}},
	{Verb: VerbCancel, Usage: "cancel <id>", Description: "Cancel a pending request, or the jobs of a request that have not finished.", Examples: []string{"cancel xvm-k3m9q2"}},
	{Verb: VerbUndo, Usage: "undo <job>|<request>", Description: "Move the VM of a finished job, or every VM a request moved, back where it came from, as a new request that needs approval (one per placement the VMs came from).", Examples: []string{"undo xvm-k3m9q2-01", "undo xvm-k3m9q2"}},
	{Verb: VerbVCenters, Usage: "vcenters", Description: "List the configured vCenters, their versions and whether they answer.", Examples: []string{"vcenters"}},
	{Verb: VerbStats, Usage: "stats [24h|7d]", Description: "Show how many moves succeeded and failed, and how long they took (default 24h).", Examples: []string{"stats", "stats 7d"}},
	{Verb: VerbHelp, Usage: "help [command]", Description: "Show this help, or the usage of one command.", Examples: []string{"help", "help migrate"}},
}

func lookupCommand(verb string) *commandDef {
	for i := range commands {
		if commands[i].Verb == verb {
			return &commands[i]
		}
	}
	return nil
}

func verbs() []string {
	out := make([]string, len(commands))
	for i, c := range commands {
		out[i] = c.Verb
	}
	return out
}

// Usage returns the usage text of a verb: its synopsis, description, options and examples.
// For "" or an unknown verb it returns the whole help.
func Usage(verb string) string {
	c := lookupCommand(strings.ToLower(verb))
	if c == nil {
		return helpText()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "/xvm %s\n  %s\n", c.Usage, c.Description)
	if c.Options {
		b.WriteString("\n")
		writeOptions(&b)
	}
	b.WriteString("\nExamples:\n")
	for _, e := range c.Examples {
		fmt.Fprintf(&b, "  /xvm %s\n", e)
	}
	return strings.TrimRight(b.String(), "\n")
}

// helpText lists every command, the options and a few examples.
func helpText() string {
	var b strings.Builder
	b.WriteString("xvmbot moves VMs between vCenters (Advanced Cross vCenter vMotion), after approval.\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "/xvm %s\n  %s\n", c.Usage, c.Description)
	}
	b.WriteString("\n")
	writeOptions(&b)
	b.WriteString("\nQuote names with spaces: \"web 01\", folder=\"migrated/web apps\".\n")
	b.WriteString("Cluster, host, pool and folder also take the inventory path the vSphere Client shows: cluster=/dc-west/host/prod, folder=/dc-west/vm/migrated.\n\nExamples:\n")
	for _, c := range commands {
		if c.Options {
			fmt.Fprintf(&b, "  /xvm %s\n", c.Examples[len(c.Examples)-1])
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func writeOptions(b *strings.Builder) {
	b.WriteString("Options:\n")
	lines := optionHelp()
	width := 0
	for _, o := range lines {
		width = max(width, len([]rune(o[0])))
	}
	for _, o := range lines {
		fmt.Fprintf(b, "  %s%s  %s\n", o[0], strings.Repeat(" ", width-len([]rune(o[0]))), o[1])
	}
}

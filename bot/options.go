package bot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xvmbot/xvmbot/move"
)

// placementOption is one key=value option of a move: how it is read into a Placement,
// written back from one, and explained. placementOptions is the only place an option is
// spelled: ParseCommand, Command.String and the help all follow it, in its order. A new
// placement option is a field of move.Placement and a line of this table.
type placementOption struct {
	key string // as typed before "=", in lower case
	// numbered options are typed key<N>=, one per N (disk2=…), each its own option.
	numbered bool
	// list options may hold commas in their value (network=a:b,c:d); the others take one
	// value, and a comma or "=" in it must be quoted.
	list bool
	// help are the lines of the options' help, each a synopsis and what it sets; an
	// option without any is said on the line of the one before it (host= with cluster=).
	help [][2]string
	// set reads val into p; n is the number of a numbered option. The value is not
	// empty (but for numbered options, which say what they need themselves). An error
	// names the problem in words; the grammar adds the usage.
	set func(p *move.Placement, n int, val token) error
	// words writes p's setting back as key=value words that set it again ("" none).
	words func(p move.Placement) []string
}

// placementOptions are the options of migrate, import and check, in the order
// Command.String writes them and the help lists them.
var placementOptions = []placementOption{
	nameOption("cluster", [][2]string{{"cluster=<name>  host=<name>", "target compute resource: a cluster, a host, or a host of the cluster"}},
		func(p *move.Placement) *string { return &p.Cluster }),
	nameOption("host", nil, func(p *move.Placement) *string { return &p.Host }),
	nameOption("pool", [][2]string{{"pool=<name>", "target resource pool"}},
		func(p *move.Placement) *string { return &p.Pool }),
	nameOption("datastore", [][2]string{{"datastore=<name>", "target datastore, or datastore cluster"}},
		func(p *move.Placement) *string { return &p.Datastore }),
	nameOption("folder", [][2]string{{"folder=<path>", "target VM folder"}},
		func(p *move.Placement) *string { return &p.Folder }),
	{
		key: "network", list: true,
		help: [][2]string{{"network=<dst-pg>", "target portgroup for every NIC"},
			{"network=<src-pg>:<dst-pg>[,…]", "target portgroup per source portgroup"}},
		set: func(p *move.Placement, _ int, val token) error {
			nets, err := parseNetworks(val)
			if err != nil {
				return err
			}
			p.Networks = nets
			return nil
		},
		words: func(p move.Placement) []string {
			if len(p.Networks) == 0 {
				return nil
			}
			maps := make([]string, len(p.Networks))
			for i, m := range p.Networks {
				maps[i] = quoteValue(m.Target)
				if m.Source != "" {
					maps[i] = quoteValue(m.Source) + ":" + maps[i]
				}
			}
			return []string{"network=" + strings.Join(maps, ",")}
		},
	},
	{
		key:  "disk",
		help: [][2]string{{"disk=same|thin|thick|eager", "disk format (default: same as source)"}},
		set: func(p *move.Placement, _ int, val token) error {
			f, err := move.ParseDiskFormat(val.text)
			if err != nil {
				return fmt.Errorf("disk=%s is not a disk format: use same, thin, thick or eager%s", val.text, suggest(strings.ToLower(val.text), diskFormats, ""))
			}
			p.DiskFormat = f
			return nil
		},
		words: func(p move.Placement) []string { return nonEmptyOption("disk", string(p.DiskFormat)) },
	},
	{
		key: "disk", numbered: true,
		help:  [][2]string{{"disk<N>=<ds>[:<format>][:<policy>]", "\"Hard disk N\" on its own datastore, format and/or storage policy"}},
		set:   setDisk,
		words: diskWords,
	},
	nameOption("policy", [][2]string{{"policy=<name>", "target VM storage policy (default: the VM's own, by name)"}},
		func(p *move.Placement) *string { return &p.Policy }),
	{
		key:  "priority",
		help: [][2]string{{"priority=default|high", "vMotion priority"}},
		set: func(p *move.Placement, _ int, val token) error {
			v, err := move.ParsePriority(val.text)
			if err != nil {
				return fmt.Errorf("priority=%s is not a priority: use default or high", val.text)
			}
			p.Priority = v
			return nil
		},
		words: func(p move.Placement) []string { return nonEmptyOption("priority", string(p.Priority)) },
	},
}

// nameOption is an option whose value is the name of an object in the target vCenter.
func nameOption(key string, help [][2]string, field func(p *move.Placement) *string) placementOption {
	return placementOption{
		key:  key,
		help: help,
		set: func(p *move.Placement, _ int, val token) error {
			*field(p) = val.text
			return nil
		},
		words: func(p move.Placement) []string {
			if v := *field(&p); v != "" {
				return []string{key + "=" + quoteValue(v)}
			}
			return nil
		},
	}
}

// nonEmptyOption writes key=value for a value of a fixed set (written as it is), if set.
func nonEmptyOption(key, value string) []string {
	if value == "" {
		return nil
	}
	return []string{key + "=" + value}
}

// lookupOption finds the option typed as key (lower case) and, for a numbered option, its
// number.
func lookupOption(key string) (o *placementOption, n int, ok bool) {
	for i := range placementOptions {
		o := &placementOptions[i]
		if !o.numbered && key == o.key {
			return o, 0, true
		}
		if o.numbered {
			if n, ok := numberedKey(key, o.key); ok {
				return o, n, true
			}
		}
	}
	return nil, 0, false
}

// optionKeys are the keys typed as they are, for suggestions.
func optionKeys() []string {
	var out []string
	for _, o := range placementOptions {
		if !o.numbered {
			out = append(out, o.key)
		}
	}
	return out
}

// optionHelp explains the placement options, one line each.
func optionHelp() [][2]string {
	var out [][2]string
	for _, o := range placementOptions {
		out = append(out, o.help...)
	}
	return out
}

// placementWords writes p back as the options that give it.
func placementWords(p move.Placement) []string {
	var out []string
	for _, o := range placementOptions {
		out = append(out, o.words(p)...)
	}
	return out
}

// setOption validates and stores one key=value option o (number n, for a numbered one).
func (c *Command) setOption(o *placementOption, key string, n int, val token) error {
	if !o.numbered {
		if val.text == "" {
			return usageErr(c.Verb, fmt.Sprintf("option %s= needs a value", key))
		}
		if !o.list && val.index(',') >= 0 {
			return usageErr(c.Verb, fmt.Sprintf("option %s=%s takes one value; quote names that contain a comma", key, val.raw))
		}
		if !o.list && val.index('=') >= 0 {
			return usageErr(c.Verb, fmt.Sprintf("option %s=%s: unexpected \"=\" in the value; quote it if it is part of the name", key, val.raw))
		}
	}
	if err := o.set(&c.Placement, n, val); err != nil {
		return usageErr(c.Verb, err.Error())
	}
	return nil
}

// maxDiskNumber is the highest N of a diskN= option: a VM has at most 64 virtual disks
// on its SCSI controllers, and "Hard disk N" counts them from 1.
const maxDiskNumber = 64

// numberedKey reads the N of a key<N>= option key ("disk2" → 2).
func numberedKey(k, prefix string) (int, bool) {
	digits, ok := strings.CutPrefix(k, prefix)
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}

// setDisk reads diskN=<datastore>[:<format>][:<policy>] or diskN=<format>: "Hard disk
// N" of each VM goes to its own datastore, in its own format and/or under its own storage
// policy (the wizard's "Configure per disk"). Each part may be left empty
// (disk2=::gold-policy sets only the policy).
func setDisk(p *move.Placement, n int, val token) error {
	key := fmt.Sprintf("disk%d", n)
	if n < 1 || n > maxDiskNumber {
		return fmt.Errorf("option %s= names no disk: disks are numbered as in \"Hard disk N\", from 1 to %d", key, maxDiskNumber)
	}
	if val.text == "" {
		return fmt.Errorf("option %s= needs a datastore, a format, or <datastore>:<format>[:<policy>]", key)
	}
	if val.index(',') >= 0 || val.index('=') >= 0 {
		return fmt.Errorf("option %s=%s takes one datastore, one format and one policy: %s=<datastore>[:<format>][:<policy>]; quote names that contain \",\" or \"=\"", key, val.raw, key)
	}
	d := move.Disk{Disk: n}
	ds, rest, found := val.cut(':')
	format, policy, _ := rest.cut(':')
	switch {
	case found:
		d.Datastore, d.DiskFormat, d.Policy = ds.text, move.DiskFormat(strings.ToLower(format.text)), policy.text
		if ds.text == "" && format.text == "" && policy.text == "" {
			return fmt.Errorf("option %s= needs a datastore, a format, or <datastore>:<format>[:<policy>]", key)
		}
	case move.DiskFormat(strings.ToLower(val.text)).Valid() && !val.quoted[0]:
		d.DiskFormat = move.DiskFormat(strings.ToLower(val.text))
	default:
		d.Datastore = val.text
	}
	if policy.index(':') >= 0 {
		return fmt.Errorf("%s=%s has too many parts; quote a datastore or policy that contains \":\"", key, val.raw)
	}
	if d.DiskFormat != "" && !d.DiskFormat.Valid() {
		return fmt.Errorf("%s=%s: %s is not a disk format: use same, thin, thick or eager%s", key, val.raw, quote(format.text), suggest(string(d.DiskFormat), diskFormats, ""))
	}
	p.Disks = append(p.Disks, d)
	return nil
}

// diskWords writes the per-disk placement back as diskN= options.
func diskWords(p move.Placement) []string {
	var out []string
	for _, d := range p.Disks {
		v := quoteValue(d.Datastore)
		switch {
		case d.Policy != "":
			if d.Datastore == "" {
				v = ""
			}
			v += ":" + string(d.DiskFormat) + ":" + quoteValue(d.Policy)
		case d.Datastore == "":
			v = string(d.DiskFormat)
		case d.DiskFormat != "":
			v += ":" + string(d.DiskFormat)
		case move.DiskFormat(strings.ToLower(d.Datastore)).Valid():
			v += ":" // a datastore named like a format, not the format
		}
		out = append(out, fmt.Sprintf("disk%d=%s", d.Disk, v))
	}
	return out
}

// parseNetworks reads network=<dst> or network=<src>:<dst>[,<src>:<dst>…].
func parseNetworks(val token) ([]move.Network, error) {
	parts := val.split(',')
	if len(parts) == 1 && parts[0].index(':') < 0 {
		if val.index('=') >= 0 {
			return nil, fmt.Errorf("network=%s: unexpected \"=\" in the portgroup; quote it if it is part of the name", val.raw)
		}
		return []move.Network{{Target: val.text}}, nil
	}
	var out []move.Network
	mapped := map[string]bool{}
	for _, part := range parts {
		src, dst, ok := part.cut(':')
		switch {
		case part.text == "":
			return nil, fmt.Errorf("network=%s has an empty mapping", val.raw)
		case !ok:
			return nil, fmt.Errorf("network mapping %s needs a source and a target: <src-pg>:<dst-pg>", quote(part.text))
		case src.text == "" || dst.text == "":
			return nil, fmt.Errorf("network mapping %s needs a source and a target: <src-pg>:<dst-pg>", quote(part.text))
		case dst.index(':') >= 0 || src.index('=') >= 0 || dst.index('=') >= 0:
			return nil, fmt.Errorf("network mapping %s has too many parts; quote portgroups that contain \":\" or \"=\"", quote(part.text))
		}
		if mapped[src.text] {
			return nil, fmt.Errorf("network source %s is mapped twice", quote(src.text))
		}
		mapped[src.text] = true
		out = append(out, move.Network{Source: src.text, Target: dst.text})
	}
	return out, nil
}

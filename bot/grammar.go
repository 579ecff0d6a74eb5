package bot

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
)

// Command is a parsed /xvm command.
type Command struct {
	Verb      string              // migrate, import, check, status, list, cancel, undo, vcenters, stats, help
	Direction approvals.Direction // for migrate/import and check migrate|import
	Check     bool                // /xvm check migrate|import …: pre-flight only
	VMs       []string            // comma list; quoted names allowed ("web 01"); patterns like web-* kept verbatim
	From, To  string              // vCenter names as typed ("" when omitted)
	Placement move.Placement      // cluster=, host=, pool=, datastore=, folder=, network=, disk=, priority=
	Arg       string              // id for status/cancel/undo; window (24h|7d) for stats; verb for help
	Wizard    bool                // migrate/import with no arguments: open the modal
	UndoOf    string              // the job or request an undo asks the way back of (set by undo, not typed)
	RetryOf   string              // the request whose failed VMs a retry asks again (set by the button, not typed)
}

// UsageError names what is wrong with a command and carries the usage to show.
type UsageError struct {
	Problem string // one sentence naming the offending word, e.g. `unknown option "dsk" — did you mean disk=?`
	Usage   string // usage of the verb, or the whole help when the verb is unknown
}

// Error returns the problem, which is what a person should read first.
func (e *UsageError) Error() string { return e.Problem }

// The verbs, as typed after /xvm.
const (
	VerbMigrate  = "migrate"
	VerbImport   = "import"
	VerbCheck    = "check"
	VerbStatus   = "status"
	VerbList     = "list"
	VerbCancel   = "cancel"
	VerbUndo     = "undo"
	VerbVCenters = "vcenters"
	VerbStats    = "stats"
	VerbHelp     = "help"
)

var (
	diskFormats    = stringsOf(move.DiskFormats)
	statsWindows   = []string{"24h", "7d"}
	defaultWindow  = "24h"
	keywords       = []string{"from", "to"}
	slackLink      = regexp.MustCompile(`<([^<>]*)>`)
	entityDecoder  = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")
	entityEncoder  = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	quoteFolder    = strings.NewReplacer("\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u2018", "'", "\u2019", "'", "\u201a", "'")
	maxQuotedInErr = 40
)

// ParseCommand parses the text that follows "/xvm" as Slack sends it (HTML entities, smart
// quotes and auto-linked names are undone first). Empty text is help; stats without a window
// is stats 24h; ids are lower-cased. Errors are *UsageError; on error the Command is zero.
func ParseCommand(text string) (Command, error) {
	c, err := parse(text)
	if err != nil {
		return Command{}, err
	}
	return c, nil
}

func parse(text string) (Command, error) {
	if !utf8.ValidString(text) {
		return Command{}, usageErr("", "the command is not valid UTF-8 text")
	}
	norm := normalize(text)
	toks, err := lex(norm)
	if err != nil {
		if f := strings.Fields(norm); len(f) > 0 && lookupCommand(strings.ToLower(f[0])) != nil {
			err.Usage = Usage(f[0])
		}
		return Command{}, err
	}
	if len(toks) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	verb := strings.ToLower(toks[0].text)
	args := toks[1:]
	switch verb {
	case VerbMigrate, VerbImport:
		return parseMove(verb, approvals.Direction(verb), false, args)
	case VerbCheck:
		if len(args) == 0 {
			return Command{}, usageErr(verb, `check needs "migrate" or "import" and the VMs to check`)
		}
		dir := strings.ToLower(args[0].text)
		if dir != VerbMigrate && dir != VerbImport {
			return Command{}, usageErr(verb, fmt.Sprintf(`check needs "migrate" or "import" first, got %s`, quote(args[0].text)))
		}
		return parseMove(verb, approvals.Direction(dir), true, args[1:])
	case VerbStatus, VerbCancel, VerbUndo:
		what := map[string]string{VerbStatus: "a request or job id", VerbCancel: "a request or job id", VerbUndo: "a job or request id"}[verb]
		if len(args) == 0 {
			return Command{}, usageErr(verb, fmt.Sprintf("%s needs %s, e.g. xvm-k3m9q2", verb, what))
		}
		if len(args) > 1 {
			return Command{}, usageErr(verb, fmt.Sprintf("%s takes one id, unexpected %s", verb, quote(args[1].raw)))
		}
		id := strings.ToLower(args[0].text)
		if id == "" || strings.IndexFunc(id, unicode.IsSpace) >= 0 {
			return Command{}, usageErr(verb, fmt.Sprintf("%s is not an id", quote(args[0].text)))
		}
		return Command{Verb: verb, Arg: id}, nil
	case VerbList, VerbVCenters:
		if len(args) > 0 {
			return Command{}, usageErr(verb, fmt.Sprintf("%s takes no arguments, unexpected %s", verb, quote(args[0].raw)))
		}
		return Command{Verb: verb}, nil
	case VerbStats:
		switch {
		case len(args) == 0:
			return Command{Verb: verb, Arg: defaultWindow}, nil
		case len(args) > 1:
			return Command{}, usageErr(verb, fmt.Sprintf("stats takes one window, unexpected %s", quote(args[1].raw)))
		}
		w := strings.ToLower(args[0].text)
		if !slices.Contains(statsWindows, w) {
			return Command{}, usageErr(verb, fmt.Sprintf("unknown window %s: use 24h or 7d", quote(args[0].text)))
		}
		return Command{Verb: verb, Arg: w}, nil
	case VerbHelp:
		switch {
		case len(args) == 0:
			return Command{Verb: verb}, nil
		case len(args) > 1:
			return Command{}, usageErr(verb, fmt.Sprintf("help takes one command name, unexpected %s", quote(args[1].raw)))
		}
		v := strings.ToLower(args[0].text)
		if lookupCommand(v) == nil {
			return Command{}, usageErr("", fmt.Sprintf("no command %s%s", quote(args[0].text), suggest(v, verbs(), "")))
		}
		return Command{Verb: verb, Arg: v}, nil
	}
	return Command{}, usageErr("", fmt.Sprintf("unknown command %s%s", quote(toks[0].text), suggest(verb, verbs(), "")))
}

// parseMove parses what follows migrate, import or check migrate|import.
func parseMove(verb string, dir approvals.Direction, check bool, args []token) (Command, error) {
	c := Command{Verb: verb, Direction: dir, Check: check}
	if len(args) == 0 {
		// No VMs: the wizard, in check mode for "check migrate" (a review only).
		c.Wizard = true
		return c, nil
	}
	first := args[0]
	switch {
	case first.isKeyword():
		return c, usageErr(verb, fmt.Sprintf("the VM names come first, before %s", quote(first.raw)))
	case first.index('=') >= 0:
		return c, usageErr(verb, fmt.Sprintf("the VM names come first, before option %s", quote(first.raw)))
	}
	listed := map[string]bool{} // a set, not a search of the list: lists run to thousands
	for _, part := range first.split(',') {
		if part.text == "" {
			return c, usageErr(verb, fmt.Sprintf("empty VM name in %s", quote(first.raw)))
		}
		if !listed[part.text] {
			listed[part.text] = true
			c.VMs = append(c.VMs, part.text)
		}
	}

	seen := map[string]bool{}
	for i := 1; i < len(args); i++ {
		t := args[i]
		if t.isKeyword() {
			kw := strings.ToLower(t.text)
			if seen[kw] {
				return c, usageErr(verb, fmt.Sprintf("%s is given twice", quote(kw)))
			}
			seen[kw] = true
			if i+1 >= len(args) || args[i+1].isKeyword() || args[i+1].index('=') >= 0 {
				return c, usageErr(verb, fmt.Sprintf("%s needs a vCenter name", quote(t.raw)))
			}
			i++
			name := args[i]
			if name.text == "" {
				return c, usageErr(verb, fmt.Sprintf("empty vCenter name after %s", quote(t.raw)))
			}
			if name.index(',') >= 0 {
				return c, usageErr(verb, fmt.Sprintf("%s %s: give one vCenter", kw, quote(name.raw)))
			}
			if kw == "from" {
				c.From = name.text
			} else {
				c.To = name.text
			}
			continue
		}
		key, val, ok := t.cut('=')
		if !ok {
			return c, usageErr(verb, fmt.Sprintf("unexpected %s: options look like key=value; quote names with spaces (\"web 01\") and list VMs with commas", quote(t.raw)))
		}
		k := strings.ToLower(key.text)
		o, n, ok := lookupOption(k)
		if !ok {
			return c, usageErr(verb, fmt.Sprintf("unknown option %s%s", quote(key.text), suggest(k, optionKeys(), "=")))
		}
		// A numbered option is keyed by its number, so that disk01= and disk1= are the same.
		once := k + "="
		if o.numbered {
			once = fmt.Sprintf("%s%d=", o.key, n)
		}
		if seen[once] {
			return c, usageErr(verb, fmt.Sprintf("option %s is given twice", once))
		}
		seen[once] = true
		if err := c.setOption(o, k, n, val); err != nil {
			return c, err
		}
	}
	if dir == approvals.Migrate && c.To == "" {
		return c, usageErr(verb, `migrate needs a target: "to <vcenter>"`)
	}
	if dir == approvals.Import && c.From == "" {
		return c, usageErr(verb, `import needs a source: "from <vcenter>"`)
	}
	if c.From != "" && strings.EqualFold(c.From, c.To) {
		return c, usageErr(verb, fmt.Sprintf("source and target are both %s: cross vCenter moves need two vCenters", quote(c.To)))
	}
	return c, nil
}

// String returns the command as Slack would send it after "/xvm": parsing it gives back c.
func (c Command) String() string {
	w := []string{c.Verb}
	switch c.Verb {
	case VerbMigrate, VerbImport, VerbCheck:
		if c.Check {
			w = append(w, string(c.Direction))
		}
		if len(c.VMs) > 0 {
			vms := make([]string, len(c.VMs))
			for i, v := range c.VMs {
				vms[i] = quoteValue(v)
			}
			w = append(w, strings.Join(vms, ","))
		}
		if c.From != "" {
			w = append(w, "from", quoteValue(c.From))
		}
		if c.To != "" {
			w = append(w, "to", quoteValue(c.To))
		}
		w = append(w, placementWords(c.Placement)...)
	default:
		if c.Arg != "" {
			w = append(w, quoteValue(c.Arg))
		}
	}
	return strings.Join(w, " ")
}

// quoteValue writes a name so that the lexer reads it back unchanged: quoted when it holds
// spaces, separators or quotes, or is a keyword; entities escaped as Slack does.
func quoteValue(v string) string {
	needs := v == "" || slices.Contains(keywords, strings.ToLower(v)) ||
		strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(`"',=:`, r) }) >= 0
	if !needs {
		return entityEncoder.Replace(v)
	}
	// Runs of double quotes go inside single quotes, everything else inside double quotes.
	var b strings.Builder
	if v == "" {
		return `""`
	}
	for v != "" {
		q, n := byte('"'), strings.IndexByte(v, '"')
		if n == 0 {
			q, n = '\'', len(v)-len(strings.TrimLeft(v, `"`))
		} else if n < 0 {
			n = len(v)
		}
		b.WriteByte(q)
		b.WriteString(entityEncoder.Replace(v[:n]))
		b.WriteByte(q)
		v = v[n:]
	}
	return b.String()
}

// normalize undoes what Slack does to typed text: auto-links (<http://vc-east|vc-east> →
// vc-east), HTML entities and smart quotes.
func normalize(s string) string {
	s = slackLink.ReplaceAllStringFunc(s, func(m string) string {
		inner := m[1 : len(m)-1]
		if _, label, ok := strings.Cut(inner, "|"); ok {
			return label
		}
		for _, scheme := range []string{"http://", "https://", "mailto:"} {
			if strings.HasPrefix(strings.ToLower(inner), scheme) {
				return inner[len(scheme):]
			}
		}
		return m
	})
	return quoteFolder.Replace(entityDecoder.Replace(s))
}

// token is one whitespace-separated word with its quotes removed. quoted marks, per byte of
// text, what was inside quotes: separators (, = :) and keywords count only outside quotes.
type token struct {
	text   string
	quoted []bool
	raw    string // as typed, for messages
}

// lex splits s into tokens. Quotes (" or ') may open anywhere in a word; a comma at the end
// or start of a word joins it to its neighbour, so "web-01, web-02" is one list (but never
// swallows a keyword: "web-01, to x" is an empty name, not a VM called "to").
func lex(s string) ([]token, *UsageError) {
	var (
		toks    []token
		cur     token
		text    strings.Builder
		started bool
		inQuote rune
		start   int
	)
	flush := func(end int) {
		if started {
			cur.text, cur.raw = text.String(), s[start:end]
			toks = append(toks, cur)
		}
		cur, started = token{}, false
		text.Reset()
	}
	add := func(r rune, q bool) {
		text.WriteRune(r)
		for range utf8.RuneLen(r) {
			cur.quoted = append(cur.quoted, q)
		}
	}
	for i, r := range s {
		switch {
		case inQuote != 0 && r == inQuote:
			inQuote = 0
		case inQuote != 0:
			add(r, true)
		case unicode.IsSpace(r):
			flush(i)
		default:
			if !started {
				started, start = true, i
			}
			if r == '"' || r == '\'' {
				inQuote = r
			} else {
				add(r, false)
			}
		}
	}
	if inQuote != 0 {
		return nil, usageErr("", fmt.Sprintf("unterminated quote in `%s`: add the closing %c", clip(s[start:]), inQuote))
	}
	flush(len(s))
	return joinLists(toks), nil
}

// joinLists joins each run of tokens that a comma ties together ("web-01," "web-02") into
// one token. Each run is built once, in one pass over its parts: a pasted list of thousands
// of names costs time in proportion to its length.
func joinLists(toks []token) []token {
	out := make([]token, 0, len(toks))
	for i := 0; i < len(toks); {
		// The run's last character so far; an empty quoted part ("") does not change it.
		endsComma := toks[i].endsWith(',')
		j := i + 1
		for ; j < len(toks); j++ {
			t := toks[j]
			if t.isKeyword() || !endsComma && !t.startsWith(',') {
				break
			}
			if t.text != "" {
				endsComma = t.endsWith(',')
			}
		}
		if j == i+1 {
			out = append(out, toks[i])
			i = j
			continue
		}
		var text, raw strings.Builder
		size, rawSize := 0, 0
		for _, t := range toks[i:j] {
			size += len(t.text)
			rawSize += len(t.raw) + 1
		}
		text.Grow(size)
		raw.Grow(rawSize)
		quoted := make([]bool, 0, size)
		for k, t := range toks[i:j] {
			if k > 0 {
				raw.WriteByte(' ')
			}
			text.WriteString(t.text)
			raw.WriteString(t.raw)
			quoted = append(quoted, t.quoted...)
		}
		out = append(out, token{text: text.String(), quoted: quoted, raw: raw.String()})
		i = j
	}
	return out
}

func (t token) isKeyword() bool {
	return !slices.Contains(t.quoted, true) && slices.Contains(keywords, strings.ToLower(t.text))
}

// index returns the byte offset of the first unquoted c, or -1.
func (t token) index(c byte) int {
	for i := 0; i < len(t.text); i++ {
		if t.text[i] == c && !t.quoted[i] {
			return i
		}
	}
	return -1
}

func (t token) startsWith(c byte) bool { return t.text != "" && t.text[0] == c && !t.quoted[0] }

func (t token) endsWith(c byte) bool {
	n := len(t.text) - 1
	return n >= 0 && t.text[n] == c && !t.quoted[n]
}

func (t token) sub(i, j int) token {
	return token{text: t.text[i:j], quoted: t.quoted[i:j], raw: t.text[i:j]}
}

// cut splits t around its first unquoted c.
func (t token) cut(c byte) (before, after token, found bool) {
	i := t.index(c)
	if i < 0 {
		return t, token{}, false
	}
	return t.sub(0, i), t.sub(i+1, len(t.text)), true
}

// split splits t at every unquoted c.
func (t token) split(c byte) []token {
	var out []token
	for {
		before, after, ok := t.cut(c)
		out = append(out, before)
		if !ok {
			return out
		}
		t = after
	}
}

func usageErr(verb, problem string) *UsageError {
	return &UsageError{Problem: problem, Usage: Usage(verb)}
}

// quote puts a word in double quotes for a message, shortened if long.
func quote(s string) string { return `"` + clip(s) + `"` }

func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxQuotedInErr {
		return s
	}
	r := []rune(s)
	return string(r[:maxQuotedInErr-1]) + "…"
}

// suggest returns ` — did you mean x?` for the closest candidate, or "".
func suggest(word string, candidates []string, suffix string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(word, c)
		if word != "" && strings.HasPrefix(c, word) && len(word) >= 2 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(1, len(word)/2) {
		return ""
	}
	return " — did you mean " + best + suffix + "?"
}

// editDistance is the Levenshtein distance between a and b, by rune.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 {
		return len(ra)
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// stringsOf is a list of typed words as plain strings, for suggestions and selects.
func stringsOf[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

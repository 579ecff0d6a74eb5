package bot

import (
	"strings"
	"unicode/utf8"
)

// escClip escapes s for mrkdwn, then clips the result to n characters. The order matters:
// Slack's limits count what is sent, and escaping grows text (a 1,000-character reason of
// "&<>" is 4,300 characters escaped), so text clipped first and escaped after can pass
// a block's limit and the whole message be refused.
func escClip(s string, n int) string { return clipEscaped(esc(s), n) }

// clipEscaped clips mrkdwn that is already escaped to n characters without cutting an
// entity (&amp; &lt; &gt;) in half, which would show as "&am…".
func clipEscaped(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	if i := strings.LastIndexByte(string(r), '&'); i >= 0 {
		if tail := string(r)[i:]; !strings.Contains(tail, ";") && len(tail) < len("&amp;") {
			r = []rune(string(r)[:i])
		}
	}
	return string(r) + "…"
}

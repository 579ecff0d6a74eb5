package slacksim

import (
	"encoding/json"
	"regexp"
	"strings"
)

// PlainText renders Block Kit blocks the way a person reads them in the Slack client, as
// plain lines: headers, section text and fields, context, dividers and buttons as
// "[Approve]". Mentions <@U…> become @name through names. It falls back to text when
// there are no blocks.
func PlainText(blocks json.RawMessage, fallback string, names map[string]string) string {
	var bs []map[string]any
	if len(blocks) == 0 || json.Unmarshal(blocks, &bs) != nil || len(bs) == 0 {
		return mentions(fallback, names)
	}
	var lines []string
	for _, b := range bs {
		switch b["type"] {
		case "header":
			lines = append(lines, "*"+textOf(b["text"])+"*")
		case "section":
			if t := textOf(b["text"]); t != "" {
				lines = append(lines, t)
			}
			if fs, ok := b["fields"].([]any); ok {
				for _, f := range fs {
					lines = append(lines, "  "+strings.ReplaceAll(textOf(f), "\n", "  "))
				}
			}
			if acc, ok := b["accessory"].(map[string]any); ok && acc["type"] == "button" {
				lines = append(lines, "["+textOf(acc["text"])+"]")
			}
		case "context":
			var parts []string
			if es, ok := b["elements"].([]any); ok {
				for _, e := range es {
					if t := textOf(e); t != "" {
						parts = append(parts, t)
					}
				}
			}
			lines = append(lines, strings.Join(parts, "  "))
		case "divider":
			lines = append(lines, "────────")
		case "actions":
			var parts []string
			if es, ok := b["elements"].([]any); ok {
				for _, e := range es {
					if m, ok := e.(map[string]any); ok && m["type"] == "button" {
						parts = append(parts, "["+textOf(m["text"])+"]")
					}
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		case "rich_text":
			// not produced by xvmbot
		}
	}
	return mentions(strings.Join(lines, "\n"), names)
}

func textOf(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	s, _ := m["text"].(string)
	return s
}

// mentionRE matches user mentions <@U…> and user-group mentions <!subteam^S…>.
var mentionRE = regexp.MustCompile(`<(?:@|!subteam\^)([UWS][A-Z0-9_]+)(\|[^>]*)?>`)

// entities undoes the escaping Slack requires in mrkdwn, as the client does on display.
var entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// dateRE matches Slack's date formatting, <!date^UNIX^TOKENS|fallback>; the client shows
// it in the reader's zone, the local Slack shows the fallback.
var dateRE = regexp.MustCompile(`<!date\^[0-9]+\^[^|>]*\|([^>]*)>`)

// linkRE is a link with a label (<https://…|web-01>), which Slack shows as the label.
var linkRE = regexp.MustCompile(`<https?://[^|>\s]+\|([^>]*)>`)

func mentions(s string, names map[string]string) string {
	s = dateRE.ReplaceAllString(s, "$1")
	s = linkRE.ReplaceAllString(s, "$1") // a link reads as its label
	s = mentionRE.ReplaceAllStringFunc(s, func(m string) string {
		id := mentionRE.FindStringSubmatch(m)[1]
		if n, ok := names[id]; ok {
			return "@" + n
		}
		return "@" + strings.ToLower(id)
	})
	return entities.Replace(s)
}

// Names returns the display names the workspace knows, for PlainText.
func (w *Workspace) Names() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.users))
	for k, v := range w.users {
		out[k] = v
	}
	return out
}

// Plain renders m as a person reads it.
func (w *Workspace) Plain(m Message) string { return PlainText(m.Blocks, m.Text, w.Names()) }

// Words is everything a person can read in m, raw: its text and every "text" in its blocks,
// one a line, mentions and escapes left as sent. Tests search it; Plain is the rendering.
func (m Message) Words() string {
	var parts []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				if s, ok := vv.(string); ok && k == "text" {
					parts = append(parts, s)
					continue
				}
				walk(vv)
			}
		case []any:
			for _, vv := range x {
				walk(vv)
			}
		}
	}
	var blocks any
	if len(m.Blocks) > 0 {
		_ = json.Unmarshal(m.Blocks, &blocks)
	}
	walk(blocks)
	return m.Text + "\n" + strings.Join(parts, "\n")
}

// ActionIDs are the action ids of the buttons in m's actions blocks, in order.
func (m Message) ActionIDs() []string {
	var bs []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
		} `json:"elements"`
	}
	if len(m.Blocks) > 0 {
		_ = json.Unmarshal(m.Blocks, &bs)
	}
	var out []string
	for _, b := range bs {
		if b.Type != "actions" {
			continue
		}
		for _, el := range b.Elements {
			out = append(out, el.ActionID)
		}
	}
	return out
}

package slacksim

import "testing"

// A labelled link reads as its label, as Slack shows it.
func TestPlainTextShowsALinksLabel(t *testing.T) {
	t.Parallel()
	got := PlainText(nil, "<https://vc-east/ui/app/vm;nav=v/urn:vmomi:VirtualMachine:vm-42:u/summary|web-01> · vc-east → vc-west", nil)
	if got != "web-01 · vc-east → vc-west" {
		t.Errorf("PlainText = %q", got)
	}
}

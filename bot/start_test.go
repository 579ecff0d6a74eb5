package bot

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// /xvm help offers buttons that open the migrate wizard and the check wizard; the global
// shortcut "Move VMs…" opens the migrate wizard, whose request goes to the configured
// channel — or, with no channel configured, a dialog says where to start instead.
func TestHelpButtonsAndShortcutOpenTheWizard(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name   string
		socket bool
	}{{"http", false}, {"socket mode", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, mode.socket, testChannel)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := e.ws.Command(ctx, requester, testChannel, "help")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"action_id":"xvm_start_migrate"`, `"action_id":"xvm_start_check"`, "Move VMs…", "Check a move…"} {
				if !strings.Contains(rep.Body, want) {
					t.Errorf("the help does not offer %s:\n%s", want, rep.Body)
				}
			}

			opened := func(after int) slacksim.View {
				t.Helper()
				var v slacksim.View
				if err := e.ws.WaitFor(ctx, func() bool {
					views := e.ws.Views()
					if len(views) <= after {
						return false
					}
					v = views[len(views)-1]
					return true
				}); err != nil {
					t.Fatalf("no dialog opened: %v", err)
				}
				return v
			}
			if _, err := e.ws.ClickEphemeral(ctx, requester, testChannel, ActionStartMigrate, "migrate"); err != nil {
				t.Fatal(err)
			}
			migrate := opened(0)
			if migrate.CallbackID != callbackWizard || migrate.User != requester {
				t.Fatalf("Move VMs… opened %+v", migrate)
			}
			if _, err := e.ws.ClickEphemeral(ctx, requester, testChannel, ActionStartCheck, "check"); err != nil {
				t.Fatal(err)
			}
			check := opened(1)
			if check.CallbackID != callbackWizard || check.Title == migrate.Title {
				t.Errorf("Check a move… opened %q, the migrate wizard is %q", check.Title, migrate.Title)
			}
			if _, err := e.ws.Shortcut(ctx, approver, ShortcutMoveVMs); err != nil {
				t.Fatal(err)
			}
			short := opened(2)
			if short.CallbackID != callbackWizard || short.User != approver || !strings.Contains(short.Metadata, testChannel) {
				t.Errorf("the shortcut opened %+v, want the migrate wizard posting to %s", short, testChannel)
			}
		})
	}

	t.Run("no channel configured", func(t *testing.T) {
		t.Parallel()
		e := newSimEnv(t, false)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := e.ws.Shortcut(ctx, approver, ShortcutMoveVMs); err != nil {
			t.Fatal(err)
		}
		var v slacksim.View
		if err := e.ws.WaitFor(ctx, func() bool {
			views := e.ws.Views()
			if len(views) == 0 {
				return false
			}
			v = views[0]
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if v.CallbackID == callbackWizard || !strings.Contains(string(v.Blocks), "/xvm migrate") {
			t.Errorf("with no channel the shortcut should say where to start, opened %+v", v)
		}
	})
}

// The help as the wizard-enabled bot answers it: the commands, then the buttons.
func TestRenderHelpWithButtonsGolden(t *testing.T) {
	t.Parallel()
	text, blocks := RenderHelp("")
	blocks = append(blocks, helpActions())
	checkSlackLimits(t, blocks)
	checkGolden(t, "help_with_buttons", goldenMessage{Text: text, Blocks: blocks})
}

// The manifest gives Slack what the bot answers: the shortcut's callback id, the Home tab
// and its event, and the Events API URL.
func TestManifestHasTheShortcutAndTheHomeTab(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../deploy/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"callback_id: " + ShortcutMoveVMs, "home_tab_enabled: true", "- app_home_opened", PathEvents} {
		if !strings.Contains(string(b), want) {
			t.Errorf("deploy/slack-app-manifest.yaml lacks %q", want)
		}
	}
}

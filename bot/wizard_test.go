package bot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/secret"
)

// inventoryPlanner is the fake planner with a small fake inventory: vc-west has two
// clusters, each seeing its own datastore and portgroup.
type inventoryPlanner struct {
	fakePlanner
	// invMu guards the inventory's own fields. It is not named mu, which would hide the
	// embedded planner's: a test setting the planner's findings must lock the lock Plan takes.
	invMu        sync.Mutex
	calls        int
	extraFolders []string // more folders of vc-west
}

func (p *inventoryPlanner) choices(_ context.Context, vc string, kind inventoryKind, prefix string, scope scopeRef) ([]choice, error) {
	p.invMu.Lock()
	p.calls++
	p.invMu.Unlock()
	inv := map[string]map[inventoryKind][]string{
		"vc-east": {kindVMs: {"web-01", "web-02", "db-01"}},
		"vc-west": {kindClusters: {"west-prod", "west-dev"}, kindHosts: {"esx-w1"}, kindFolders: {"migrated", "migrated/web"},
			kindPools: {"prod-pool"}, kindPolicies: {"gold-policy", "silver-policy"}},
	}
	names := inv[vc][kind]
	if vc == "vc-west" && kind == kindFolders {
		p.invMu.Lock()
		names = append(slices.Clone(names), p.extraFolders...)
		p.invMu.Unlock()
	}
	switch kind {
	case kindDatastores:
		names = map[string][]string{"west-prod": {"ds-gold"}, "west-dev": {"ds-dev"}, "": {"ds-gold", "ds-dev"}}[scope.Cluster]
	case kindPortgroups:
		names = map[string][]string{"west-prod": {"app-pg"}, "west-dev": {"dev-pg"}, "": {"app-pg", "dev-pg"}}[scope.Cluster]
	}
	var out []choice
	for _, n := range names {
		if strings.Contains(n, prefix) { // as vcenter.List searches
			out = append(out, choice{Label: n, Value: n})
		}
	}
	return out, nil
}

// simEnv is a bot talking to the simulated workspace, which delivers over HTTP or Socket Mode.
type simEnv struct {
	ws      *slacksim.Workspace
	bot     *Bot
	svc     *approvals.Service
	planner *inventoryPlanner
}

// newSimEnv is a bot with the wizard's inventory on a local Slack that opens modals, over
// HTTP or Socket Mode, taking requests in channels (none: any channel).
func newSimEnv(t *testing.T, socket bool, channels ...string) *simEnv {
	t.Helper()
	ws := slacksim.New()
	t.Cleanup(ws.Close)
	ws.EnableModals()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, keys := approvaltest.Key(1)
	svc := approvals.NewService(approvals.NewMemoryStore(), approvals.Policy{Approvers: []string{approver}, Quorum: 1, ExpireAfter: time.Hour}, nil, logger).
		WithSigner(signer)
	p := &inventoryPlanner{}
	b, err := New(Config{BotToken: secret.Secret("xoxb-test"), AppToken: secret.Secret("xapp-test"), SigningSecret: secret.Secret(testSecret),
		APIURL: ws.APIURL(), ProgressInterval: -1, Signer: signer, Keys: keys, Channels: channels}, svc, p, &fakeJobs{}, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Run(ctx) })
	if socket {
		wg.Go(func() { _ = b.RunSocketMode(ctx) })
		ws.UseSocketMode()
	} else {
		srv := httptest.NewServer(b.Handler())
		t.Cleanup(srv.Close)
		ws.UseHTTP(srv.URL, testSecret)
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &simEnv{ws: ws, bot: b, svc: svc, planner: p}
}

func TestWizardModal(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name   string
		socket bool
	}{{"http", false}, {"socket mode", true}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newSimEnv(t, mode.socket)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := e.ws.Command(ctx, requester, testChannel, "migrate"); err != nil {
				t.Fatal(err)
			}
			var view slacksim.View
			if err := e.ws.WaitFor(ctx, func() bool {
				var ok bool
				view, ok = e.ws.OpenView(requester, callbackWizard)
				return ok
			}); err != nil {
				t.Fatal(err)
			}
			if got := e.ws.Value(view.ID, wizSource); !slices.Equal(got, []string{"vc-east"}) {
				t.Errorf("source preset to %v, want the home vCenter", got)
			}
			if !strings.Contains(string(view.Blocks), "AB:CD:EF") {
				t.Errorf("the vCenter choices do not show thumbprints:\n%s", view.Blocks)
			}
			// An empty submission is refused field by field.
			errs, err := e.ws.SubmitView(ctx, view.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{wizTarget, wizVMs, wizCompute, wizDatastore} {
				if errs[f] == "" {
					t.Errorf("no inline error for %s: %v", f, errs)
				}
			}
			fill := func(block string, values ...string) {
				t.Helper()
				if _, err := e.ws.Fill(ctx, requester, view.ID, block, values...); err != nil {
					t.Fatal(err)
				}
			}
			suggest := func(block, query string) []string {
				t.Helper()
				got, err := e.ws.Suggest(ctx, requester, view.ID, block, query)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			fill(wizTarget, "vc-west")
			if got := suggest(wizVMs, "web"); !slices.Equal(got, []string{"web-01", "web-02"}) {
				t.Errorf("VM search 'web' offered %v", got)
			}
			if got := suggest(wizVMs, "01"); !slices.Equal(got, []string{"web-01", "db-01"}) {
				t.Errorf("VM search '01' offered %v", got)
			}
			hash := view.Hash
			fill(wizVMs, "web-01", "web-02")
			// Choosing the VMs maps each of their source networks separately.
			if err := e.ws.WaitFor(ctx, func() bool {
				v, _ := e.ws.View(view.ID)
				return v.Hash != hash && strings.Contains(string(v.Blocks), "From VM Network")
			}); err != nil {
				t.Fatal(err)
			}
			view, _ = e.ws.View(view.ID)
			if got := suggest(wizCompute, "west"); !slices.Equal(got, []string{"cluster:west-prod", "cluster:west-dev"}) {
				t.Errorf("compute search offered %v", got)
			}
			fill(wizCompute, "cluster:west-dev")
			if got := suggest(wizDatastore, ""); !slices.Equal(got, []string{"ds-dev"}) {
				t.Errorf("datastores visible from west-dev: %v", got)
			}
			// A datastore the chosen cluster cannot see is refused inline.
			fill(wizDatastore, "ds-gold")
			fill(wizNetPrefix+"0", "dev-pg")
			if errs, _ := e.ws.SubmitView(ctx, view.ID); !strings.Contains(errs[wizDatastore], "not visible from west-dev") {
				t.Fatalf("errors %v, want ds-gold not visible from west-dev", errs)
			}
			fill(wizCompute, "cluster:west-prod")
			if got := suggest(wizNetPrefix+"0", ""); !slices.Equal(got, []string{"app-pg"}) {
				t.Errorf("portgroups on west-prod: %v", got)
			}
			fill(wizNetPrefix+"0", "app-pg")
			fill(wizDisk, "thin")
			if got := suggest(wizPolicy, ""); !slices.Equal(got, []string{"gold-policy", "silver-policy"}) {
				t.Errorf("storage policies of vc-west: %v", got)
			}
			fill(wizPolicy, "gold-policy")
			fill(wizFolder, "migrated/web")
			fill(wizPriority, "high")
			if errs, err := e.ws.SubmitView(ctx, view.ID); err != nil || len(errs) != 0 {
				t.Fatalf("valid submission refused: %v %v", errs, err)
			}
			// Submitting reviews: the modal shows the pre-flight's review, and nothing is
			// asked for until "Request approval".
			review := awaitReview(ctx, t, e, view.ID)
			if all, _ := e.svc.Store().List(ctx); len(all) != 0 || review.Submit != "Request approval" ||
				!strings.Contains(e.ws.ViewPlain(view.ID), "web-01") {
				t.Fatalf("review page %q (submit %q) with %d requests stored", e.ws.ViewPlain(view.ID), review.Submit, len(all))
			}
			if errs, err := e.ws.SubmitView(ctx, view.ID); err != nil || len(errs) != 0 {
				t.Fatalf("request approval refused: %v %v", errs, err)
			}
			// The same path as a typed command: a stored request and its review in the channel.
			var r *approvals.Request
			if err := e.ws.WaitFor(ctx, func() bool {
				all, _ := e.svc.Store().List(ctx)
				if len(all) == 1 && all[0].MessageTS != "" {
					r = all[0]
					return true
				}
				return false
			}); err != nil {
				t.Fatal(err)
			}
			p := r.Placement
			if !slices.Equal(r.VMs, []string{"web-01", "web-02"}) || r.SourceVC != "vc-east" || r.TargetVC != "vc-west" || p.Cluster != "west-prod" ||
				p.Datastore != "ds-gold" || p.DiskFormat != "thin" || p.Policy != "gold-policy" || p.Folder != "migrated/web" || p.Priority != move.PriorityHigh ||
				!slices.Equal(p.Networks, []move.Network{{Source: "VM Network", Target: "app-pg"}}) || r.Requester != requester || r.Channel != testChannel {
				t.Fatalf("stored request %+v", r)
			}
			if m, ok := e.ws.Message(r.MessageTS); !ok || !strings.Contains(string(m.Blocks), ActionApprove) {
				t.Fatalf("no approval message for the wizard's request")
			}
		})
	}
}

func TestRejectAsksForAReason(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.ws.Command(ctx, requester, testChannel, "migrate web-01 to vc-west"); err != nil {
		t.Fatal(err)
	}
	var r *approvals.Request
	if err := e.ws.WaitFor(ctx, func() bool {
		all, _ := e.svc.Store().List(ctx)
		if len(all) == 1 && all[0].MessageTS != "" {
			r = all[0]
			return true
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ws.Click(ctx, approver, testChannel, r.MessageTS, ActionReject, r.ID); err != nil {
		t.Fatal(err)
	}
	var view slacksim.View
	if err := e.ws.WaitFor(ctx, func() bool { var ok bool; view, ok = e.ws.OpenView(approver, callbackReject); return ok }); err != nil {
		t.Fatal(err)
	}
	if errs, _ := e.ws.SubmitView(ctx, view.ID); errs[blockReason] == "" {
		t.Fatalf("an empty reason was accepted: %v", errs)
	}
	// Meanwhile the approver lost the right to decide (here: someone cancelled): the
	// submission is checked again on the server.
	if _, err := e.ws.Fill(ctx, approver, view.ID, blockReason, "capacity"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Cancel(ctx, r.ID, requester, ""); err != nil {
		t.Fatal(err)
	}
	if errs, _ := e.ws.SubmitView(ctx, view.ID); !strings.Contains(errs[blockReason], "cancelled") {
		t.Fatalf("rejecting a cancelled request: %v", errs)
	}
	if got, _ := e.svc.Get(ctx, r.ID); got.State != approvals.StateCancelled || got.Rejection != nil {
		t.Fatalf("stored %+v", got)
	}
}

// Only the newest change of a wizard view is rendered: an older one finishing late must
// not undo it.
func TestWizardViewsKnowTheNewestChange(t *testing.T) {
	t.Parallel()
	w := newWizardViews()
	first := w.changed("V1")
	second := w.changed("V1")
	other := w.changed("V2")
	if w.latest("V1", first) || !w.latest("V1", second) || !w.latest("V2", other) {
		t.Fatal("the newest change of each view, and only it, is the latest")
	}
	w.closed("V1")
	if w.latest("V1", second) {
		t.Fatal("a submitted view still renders")
	}
	for i := range maxOpenViews + 1 {
		w.changed(fmt.Sprintf("V%d", i+10))
	}
	if n := len(w.seq); n > maxOpenViews {
		t.Fatalf("%d views remembered, want at most %d", n, maxOpenViews)
	}
}

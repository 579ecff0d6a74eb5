package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// runApproveSplit is the approve scenario on a split deployment: a nats-server process
// (JetStream on file, every write synced, as an operator runs it), an `xvmbot bot` process
// and an `xvmbot worker` process, all built from this tree; the simulated vCenters and
// Slack run in this process. The worker starts on nothing the bot planned: it rechecks
// the placement each approval signed.
func runApproveSplit(ctx context.Context, f flags) error {
	dir, err := os.MkdirTemp("", "xvmload-split-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	xvmbotBin, natsBin, err := chaosBinaries(ctx, dir, chaosOpts{xvmbot: f.xvmbot})
	if err != nil {
		return err
	}
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(200*time.Millisecond), xvmsim.WithExtraVMs(f.samples))
	if err != nil {
		return fmt.Errorf("start simulated vCenters: %w", err)
	}
	defer lab.Close()
	ws := slacksim.New()
	defer ws.Close()
	for id, n := range map[string]string{alice: "alice", bob: "bob", dave: "dave"} {
		ws.AddUser(id, n)
	}

	fl := &chaosFleet{dir: dir}
	defer fl.stopAll()
	natsURL, err := fl.startNATS(ctx, natsBin)
	if err != nil {
		return err
	}
	common, err := chaosCommonConfig(dir, lab, ws, []string{natsURL}, chaosOpts{slots: 8, perHost: 2, perDatastore: 8})
	if err != nil {
		return err
	}
	common["nats"] = map[string]any{"url": natsURL, "replicas": 1}
	common["log"] = map[string]any{"level": "warn", "format": "json"}
	bot, err := fl.startXVMBot(ctx, xvmbotBin, kindBot, "bot1", common)
	if err != nil {
		return err
	}
	if _, err := fl.startXVMBot(ctx, xvmbotBin, kindWorker, "w1", common); err != nil {
		return err
	}
	ws.UseHTTP("http://"+bot.httpAddr, signing)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	fmt.Printf("split: nats-server, xvmbot bot and xvmbot worker in three processes (NATS %s)\n", natsURL)
	submitVM := func(ctx context.Context, vm string) (string, string, error) { return submitTo(ctx, ws, vm) }
	return timeApprovals(ctx, f.samples, ws, nc, lab.VC("vc-east"), submitVM)
}

// startNATS starts one nats-server process with JetStream on its own store directory,
// syncing every write, and returns its client URL once it is ready.
func (fl *chaosFleet) startNATS(ctx context.Context, bin string) (string, error) {
	p, url, err := fl.startNATSNode("n1", bin, freeAddr(), freeAddr(), "")
	if err != nil {
		return "", err
	}
	return url, p.awaitReady(ctx, time.Minute)
}

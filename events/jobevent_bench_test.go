package events

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/approvals"
)

// countingKV counts the bytes of the values a store reads and writes, and its watches.
type countingKV struct {
	jetstream.KeyValue
	read, written, watches atomic.Int64
}

func (c *countingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := c.KeyValue.Get(ctx, key)
	if err == nil {
		c.read.Add(int64(len(e.Value())))
	}
	return e, err
}

func (c *countingKV) GetRevision(ctx context.Context, key string, rev uint64) (jetstream.KeyValueEntry, error) {
	e, err := c.KeyValue.GetRevision(ctx, key, rev)
	if err == nil {
		c.read.Add(int64(len(e.Value())))
	}
	return e, err
}

func (c *countingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	c.written.Add(int64(len(value)))
	return c.KeyValue.Create(ctx, key, value, opts...)
}

func (c *countingKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	c.written.Add(int64(len(value)))
	return c.KeyValue.Update(ctx, key, value, rev)
}

func (c *countingKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	c.written.Add(int64(len(value)))
	return c.KeyValue.Put(ctx, key, value)
}

func (c *countingKV) WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	c.watches.Add(1)
	return c.KeyValue.WatchFiltered(ctx, keys, opts...)
}

// BenchmarkJobEvent applies one job event (a running job's progress, as most events of a
// wave are) through approvals.Service.ApplyReport on the request store on NATS KV, in a
// request of 50 and of 5,000 running VMs, and reports the bytes of KV values read and
// written per event: they must not grow with the request. start+end-B is what a job's
// start and end events cost together (they also note the job in the request's head).
//
//	go test -run '^$' -bench JobEvent -benchtime 2000x ./events
func BenchmarkJobEvent(b *testing.B) {
	for _, n := range []int{50, 5000} {
		b.Run(fmt.Sprintf("vms=%d", n), func(b *testing.B) {
			tb := newTestBus(b, BusConfig{})
			ctx := testCtx(b, 10*time.Minute)
			kv := &countingKV{KeyValue: tb.Requests().kv}
			store := &RequestStore{kv: kv}
			svc, _ := signingService(b, store)
			r := scaleRequest(n)
			if err := svc.Submit(ctx, r); err != nil {
				b.Fatal(err)
			}
			if _, won, err := svc.Approve(ctx, r.ID, "U0BOSS"); err != nil || !won {
				b.Fatalf("approve: %v %v", won, err)
			}
			apply := func(i int, rep approvals.Report) {
				rep.Job = approvals.JobID(r.ID, i)
				if _, _, _, err := svc.ApplyReport(ctx, r.ID, rep); err != nil {
					b.Fatalf("job %d: %v", i+1, err)
				}
			}
			for i := range n - 1 {
				apply(i, approvals.Report{State: approvals.StateRunning, Started: true})
			}
			// The last job's start and end, measured apart.
			read, written := kv.read.Load(), kv.written.Load()
			apply(n-1, approvals.Report{State: approvals.StateRunning, Started: true})
			apply(n-1, approvals.Report{State: approvals.StateSucceeded})
			startEnd := kv.read.Load() - read + kv.written.Load() - written

			read, written, watches := kv.read.Load(), kv.written.Load(), kv.watches.Load()
			b.ResetTimer()
			for k := 0; k < b.N; k++ {
				apply(k%(n-1), approvals.Report{State: approvals.StateRunning, Progress: 1 + k/(n-1)%99})
			}
			b.StopTimer()
			b.ReportMetric(float64(kv.read.Load()-read)/float64(b.N), "read-B/op")
			b.ReportMetric(float64(kv.written.Load()-written)/float64(b.N), "written-B/op")
			b.ReportMetric(float64(startEnd), "start+end-B")
			if w := kv.watches.Load() - watches; w != 0 {
				b.Fatalf("%d watches of whole requests for %d job events", w, b.N)
			}
		})
	}
}

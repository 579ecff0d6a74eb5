package xvmsim

import (
	"errors"
	"io"
	"net"
	"sync"
)

// frontDoor is a TCP relay in front of a simulator's listener. It lets a VC
// go down and come back on the same address: the simulator's own server
// cannot be stopped and restarted in place, and a SOAP fault would not look
// like an unreachable vCenter to a client. TLS passes through untouched, so
// clients still see the simulator's certificate.
type frontDoor struct {
	ln      net.Listener
	backend string
	wg      sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newFrontDoor(addr, backend string) (*frontDoor, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &frontDoor{ln: ln, backend: backend, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *frontDoor) addr() string { return f.ln.Addr().String() }

func (f *frontDoor) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !f.track(c) {
			_ = c.Close()
			continue
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

// track registers c unless the door is down.
func (f *frontDoor) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *frontDoor) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	_ = c.Close()
}

func (f *frontDoor) relay(client net.Conn) {
	defer f.wg.Done()
	defer f.untrack(client)
	server, err := net.Dial("tcp", f.backend)
	if err != nil {
		return
	}
	if !f.track(server) {
		_ = server.Close()
		return
	}
	defer f.untrack(server)

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Closing both ends unblocks the other direction.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
}

func (f *frontDoor) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down {
		for c := range f.conns {
			_ = c.Close()
		}
	}
}

func (f *frontDoor) close() {
	_ = f.ln.Close()
	f.setDown(true)
	f.wg.Wait()
}

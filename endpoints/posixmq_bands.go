package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// OpenMQBands returns one Receiver per priority band of the existing POSIX
// queue name, so that urgent traffic can be taken apart from the rest, for
// example with ipcchan.SelectFirst listing the urgent band first. splits
// are the lowest priorities of the bands, highest first: splits {16, 1}
// make three bands, priorities 16 and up, 1 to 15, and 0.
//
// The bands share the queue: a band that finds the oldest highest-priority
// message belongs to another band moves it to that band, which holds up to
// the queue's capacity of such messages before the others wait for it to
// be drained; drain every band (or close it, which discards its later
// messages). Each band ends with io.EOF once the configured number of
// senders (ipcchan.WithSenders) have closed and it holds nothing more.
// Options: those of [OpenMQReceiver], for every band.
func OpenMQBands[T any](name string, splits []uint32, opts ...ipcchan.Option) ([]*ipcchan.Receiver[T], error) {
	if len(splits) == 0 || !slices.IsSortedFunc(splits, func(a, b uint32) int { return int(b) - int(a) }) || splits[len(splits)-1] == 0 {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: name, Err: fmt.Errorf("%w: band splits %v: want distinct priorities above 0, highest first", ErrInvalidName, splits)}
	}
	cfg, err := newConfig("open", "posix mq "+name, optMsgRecv, opts)
	if err != nil {
		return nil, err
	}
	fd, err := openMQ(name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	q, err := newPosixMQ(fd, "posix mq "+name, cfg)
	if err != nil {
		return nil, err
	}
	st, _ := mqStats(fd)
	d := &mqDemux{q: q, splits: splits, hold: max(st.MaxMsgs, 1), open: len(splits) + 1}
	rxs := make([]*ipcchan.Receiver[T], 0, len(splits)+1)
	fail := func(err error) ([]*ipcchan.Receiver[T], error) {
		for _, rx := range rxs {
			rx.Close()
		}
		for _, b := range d.bands[len(rxs):] {
			b.Close()
		}
		return nil, err
	}
	for i := range len(splits) + 1 {
		b, err := newMQBand(d, i)
		if err != nil {
			return fail(opErr("open", name, err))
		}
		d.bands = append(d.bands, b)
	}
	for _, b := range d.bands {
		rx, err := ipcchan.NewReceiver[T](b, cfg.Options(transport.ReceiverOptions)...)
		if err != nil {
			return fail(err)
		}
		rxs = append(rxs, rx)
	}
	return rxs, nil
}

// mqDemux shares one POSIX queue descriptor among priority bands.
type mqDemux struct {
	q      *posixMQ
	splits []uint32
	hold   int // messages a band may hold for its receiver

	mu    sync.Mutex
	bands []*mqBand
	open  int
	free  [][]byte
}

func (d *mqDemux) bandOf(prio uint32) int {
	for i, s := range d.splits {
		if prio >= s {
			return i
		}
	}
	return len(d.splits)
}

// overfull reports whether a band other than b holds more than it may;
// d.mu is held.
func (d *mqDemux) overfull(b *mqBand) bool {
	for _, o := range d.bands {
		if o != b && len(o.held) > d.hold {
			return true
		}
	}
	return false
}

type heldMsg struct {
	prio uint32
	body []byte
}

// mqBand is one priority band: an transport.MsgReceiver whose readiness (the
// queue has messages, or the band holds some) a Select can wait on.
type mqBand struct {
	d      *mqDemux
	index  int
	desc   string
	held   []heldMsg // guarded by d.mu
	closed bool      // guarded by d.mu
	event  *poller.Event
	set    *poller.Set
}

func newMQBand(d *mqDemux, i int) (*mqBand, error) {
	lo, hi := uint32(0), uint32(32767)
	if i < len(d.splits) {
		lo = d.splits[i]
	}
	if i > 0 {
		hi = d.splits[i-1] - 1
	}
	b := &mqBand{d: d, index: i, desc: fmt.Sprintf("%s band %d-%d", d.q.desc, lo, hi)}
	var err error
	if b.event, err = poller.NewEvent(); err != nil {
		return nil, err
	}
	if b.set, err = poller.NewSet(); err != nil {
		b.event.Close()
		return nil, err
	}
	err = b.set.AddFD(b.event.FD())
	if err == nil {
		err = d.q.fd.Control(func(fd int) { err = b.set.AddFD(fd) })
	}
	if err != nil {
		b.set.Close()
		b.event.Close()
		return nil, err
	}
	return b, nil
}

func (b *mqBand) String() string { return b.desc }

func (b *mqBand) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := b.try(deliver)
		if err != ipcchan.ErrWouldBlock && err != errBandFull {
			return err
		}
		if err == errBandFull {
			// The queue's head belongs to a band that is not being
			// drained: look again in a while rather than spin.
			t := time.NewTimer(time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		if werr := b.set.Wait(ctx); werr != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return werr
		}
	}
}

var errBandFull = errors.New("another band holds as many messages as it may")

// TryRecvMsg takes a message of the band if one is queued or held.
func (b *mqBand) TryRecvMsg(deliver func(uint32, []byte) error) error {
	if err := b.try(deliver); err != errBandFull {
		return err
	}
	return ipcchan.ErrWouldBlock
}

// try is TryRecvMsg, reporting errBandFull when the queue's head is for a
// band that holds all it may.
func (b *mqBand) try(deliver func(uint32, []byte) error) error {
	d := b.d
	d.mu.Lock()
	for {
		if b.closed {
			d.mu.Unlock()
			return os.ErrClosed
		}
		if len(b.held) > 0 {
			m := b.held[0]
			b.held = slices.Delete(b.held, 0, 1)
			if len(b.held) == 0 {
				b.event.Clear()
			}
			d.mu.Unlock()
			err := deliver(m.prio, m.body)
			d.mu.Lock()
			d.free = append(d.free, m.body[:0])
			d.mu.Unlock()
			return err
		}
		c := &d.q.core
		if c.ended >= c.senders {
			d.mu.Unlock()
			return io.EOF
		}
		if d.overfull(b) {
			d.mu.Unlock()
			return errBandFull
		}
		m, err := d.q.take(context.Background(), false)
		if err == unix.EAGAIN {
			d.mu.Unlock()
			return ipcchan.ErrWouldBlock
		}
		if err != nil {
			d.mu.Unlock()
			return transportErr(c.what, err)
		}
		if m.kind == msgMarker {
			c.ended++
			for _, o := range d.bands {
				o.event.Set() // every band may now be at its end
			}
			continue
		}
		if len(m.body) > c.max {
			d.mu.Unlock()
			return c.tooLarge(len(m.body))
		}
		msg, prio := m.body, m.tag
		o := d.bands[d.bandOf(prio)]
		if o == b {
			err := deliver(prio, msg) // the buffer is ours while d.mu is held
			d.mu.Unlock()
			return err
		}
		if o.closed {
			continue // nobody will ever take it
		}
		// A message cannot go back into a POSIX queue: o keeps it even
		// past its bound, and then this band waits for o to be drained.
		o.hold(d, prio, msg)
		if len(o.held) > d.hold {
			d.mu.Unlock()
			return errBandFull
		}
	}
}

// hold keeps a message for band o; d.mu is held.
func (o *mqBand) hold(d *mqDemux, prio uint32, msg []byte) {
	var body []byte
	if n := len(d.free); n > 0 {
		body, d.free = d.free[n-1], d.free[:n-1]
	}
	o.held = append(o.held, heldMsg{prio: prio, body: append(body, msg...)})
	o.event.Set()
}

// SyscallConn lets ipcchan.Select wait on the band: its epoll set is
// readable when the queue has messages or the band holds some.
func (b *mqBand) SyscallConn() (syscall.RawConn, error) { return rawConn{b.set.FD()}, nil }

// Fail makes the band's waits return err once what is queued is taken.
func (b *mqBand) Fail(err error) { b.d.q.Fail(err) }

// Close closes the band, discarding what it holds and what later arrives
// for it; the queue descriptor is closed with the last band.
func (b *mqBand) Close() error {
	d := b.d
	d.mu.Lock()
	if b.closed {
		d.mu.Unlock()
		return nil
	}
	b.closed = true
	b.held = nil
	d.open--
	last := d.open == 0
	d.mu.Unlock()
	b.event.Set() // wake a Select watching the band
	err := b.set.Close()
	b.event.Close()
	if last {
		err = errors.Join(err, d.q.Close())
	}
	return err
}

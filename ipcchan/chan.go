package ipcchan

import (
	"context"
	"io"
	"iter"
	"os"
	"sync"
	"sync/atomic"
)

// Chan returns a channel that delivers r's values, for use in a native
// select statement:
//
//	for {
//		select {
//		case v, ok := <-ipcchan.Chan(ctx, rx):
//			if !ok {
//				return rx.Err() // nil at end of stream
//			}
//			use(v)
//		case <-tick.C:
//			...
//		}
//	}
//
// A Receiver has at most one such channel at a time, fed by one goroutine
// until the stream ends, an error occurs, the ctx of the call that started
// it ends, or the Receiver is closed; then the channel is closed and
// [Receiver.Err] says why. Calling Chan again while that channel is open
// returns the same channel, whatever ctx the later call passes (so calling
// it in a loop, as above, is cheap and loses nothing); once it has closed
// — its ctx ended, say — the next call starts a new one bound to its own
// ctx.
//
// Nothing read ahead is lost or reordered: the feeding goroutine holds at
// most one value that nobody has taken from the channel yet, and hands it
// back when its ctx ends, and whenever Recv, TryRecv, RecvInto, RecvFiles
// or a Select receives from the Receiver meanwhile, which then gets that
// value first.
//
// Chan is a function rather than a method because Go channels carry
// elements of less than 64 KiB: a Receiver of a larger type works (Recv,
// All, Select), and only a call of Chan on it does not compile.
func Chan[T any](ctx context.Context, r *Receiver[T]) <-chan T {
	if err := r.misuse("chan", ctx); err != nil {
		// A nil or zero Receiver, or a nil ctx: a closed channel, and Err
		// says why.
		if r != nil {
			r.chanErr.Store(&err)
		}
		c := make(chan T)
		close(c)
		return c
	}
	r.ahead.mu.Lock()
	defer r.ahead.mu.Unlock()
	if p := r.ahead.live; p != nil && p.ctx.Err() == nil {
		return p.out.(chan T)
	}
	out := make(chan T)
	p := &pump{
		ctx:     ctx,
		out:     out,
		done:    make(chan struct{}),
		reclaim: make(chan struct{}, 1),
		handed:  make(chan struct{}, 1),
	}
	r.ahead.live, r.ahead.latest = p, p
	r.chanErr.Store(new(error)) // open: Err is nil until p's channel closes
	r.ahead.pumps = append(r.ahead.pumps, p)
	r.ahead.busy.Add(1)
	go feed(r, p, out)
	return out
}

// Err returns why the channel of the last Chan call was closed: nil at end
// of stream or while it is open, otherwise the error (ctx.Err(), an error
// wrapping os.ErrClosed, a decode error, ...).
func (r *Receiver[T]) Err() error {
	if r == nil {
		return nil
	}
	if e := r.chanErr.Load(); e != nil {
		return *e
	}
	return nil
}

// feed is the goroutine behind a Chan channel.
func feed[T any](r *Receiver[T], p *pump, out chan T) {
	var stopErr error
	defer func() {
		// Only the channel of the last Chan call says why it closed: an
		// earlier one stopping late must not overwrite that.
		r.ahead.removePump(p, func() { r.chanErr.Store(&stopErr) })
		close(p.done)
		close(out)
	}()
	for {
		// recvTag marks p as holding the value before it lets go of the
		// receive lock, so that no other receive can overtake it.
		v, tag, err := r.recvTag(p.ctx, p)
		if err != nil {
			if err != io.EOF {
				stopErr = err
			}
			return
		}
		stop := false
		select {
		case out <- v:
		case <-p.reclaim:
			r.ahead.push(tagged[T]{v, tag}) // a receive asked for it
		case <-p.ctx.Done():
			r.ahead.push(tagged[T]{v, tag})
			stopErr, stop = p.ctx.Err(), true
		case <-r.closed:
			stopErr, stop = r.wrap(os.ErrClosed), true
		}
		r.ahead.letGo(p)
		if stop {
			return
		}
	}
}

// All returns an iterator over the Receiver's values, for a range loop that
// ends at end of stream. An error other than io.EOF is yielded once, with
// the zero value, and ends the loop.
func (r *Receiver[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := r.Recv(ctx)
			if err == io.EOF {
				return
			}
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}

type tagged[T any] struct {
	v   T
	tag uint32
}

// pump is one goroutine feeding a Chan channel. It is not generic, so that
// a Receiver of a type too large for a channel compiles.
type pump struct {
	ctx  context.Context
	out  any           // the chan T it feeds
	done chan struct{} // closed when the goroutine has ended

	// A receive that finds the pump holding a value sends a token on
	// reclaim and waits for one on handed: by then the value is back in
	// the queue or delivered on out.
	reclaim chan struct{}
	handed  chan struct{}

	// Guarded by aheadQueue.mu.
	holding bool // the pump holds a value read off the transport
	asked   bool // a token is in reclaim for the value held now
}

// aheadQueue holds values read ahead by Chan pumps and handed back, and
// knows the running pumps: the live one, and any whose ctx ended and that
// are still stopping.
type aheadQueue[T any] struct {
	mu     sync.Mutex
	items  []tagged[T]
	live   *pump // the pump behind the channel Chan returns now
	latest *pump // the pump the last Chan call started, whose end Err reports
	pumps  []*pump
	busy   atomic.Int32 // len(items) + len(pumps), read without mu
	// changed tells waiting Selects that a value was handed back.
	changed func()
}

// removePump forgets p, which has stopped; if p is the pump the last Chan
// call started, record (which sets what Err reports) runs first, under mu,
// so that a Chan call starting another pump cannot come in between.
func (q *aheadQueue[T]) removePump(p *pump, record func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.latest == p {
		record()
	}
	if q.live == p {
		q.live = nil
	}
	for i, x := range q.pumps {
		if x == p {
			q.pumps = append(q.pumps[:i], q.pumps[i+1:]...)
			q.busy.Add(-1)
			return
		}
	}
}

func (q *aheadQueue[T]) push(it tagged[T]) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.busy.Add(1)
	q.mu.Unlock()
	q.changed()
}

func (q *aheadQueue[T]) pop() (tagged[T], bool) {
	if q.busy.Load() == 0 {
		return tagged[T]{}, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return tagged[T]{}, false
	}
	it := q.items[0]
	q.items[0] = tagged[T]{}
	q.items = q.items[1:]
	q.busy.Add(-1)
	if len(q.items) == 0 {
		q.items = nil
	}
	return it, true
}

// hold records that p has read a value off the transport; the caller holds
// the Receiver's receive lock.
func (q *aheadQueue[T]) hold(p *pump) {
	q.mu.Lock()
	p.holding = true
	q.mu.Unlock()
}

// letGo records that p no longer holds a value, and answers a receive that
// asked for it.
func (q *aheadQueue[T]) letGo(p *pump) {
	q.mu.Lock()
	asked := p.asked
	p.holding, p.asked = false, false
	q.mu.Unlock()
	if asked {
		select {
		case <-p.reclaim: // the value went out another way: drop the token
		default:
		}
		p.handed <- struct{}{}
	}
}

// reclaim makes every pump other than self that holds a value hand it back
// (or deliver it), so that the receive in progress, which holds the
// Receiver's receive lock, takes values in the order they were read.
func (q *aheadQueue[T]) reclaim(self *pump) {
	if q.busy.Load() == 0 {
		return
	}
	var asked []*pump
	q.mu.Lock()
	for _, p := range q.pumps {
		if p != self && p.holding && !p.asked {
			p.asked = true
			p.reclaim <- struct{}{} // room: one token per value held
			asked = append(asked, p)
		}
	}
	q.mu.Unlock()
	for _, p := range asked {
		<-p.handed
	}
}

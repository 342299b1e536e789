package ipcchan

import (
	"context"
	"io"
	"iter"
	"os"
	"sync"
	"sync/atomic"
)

// Chan returns a channel that delivers the Receiver's values, for use in a
// native select statement. A goroutine feeds it until the stream ends, an
// error occurs, ctx ends or the Receiver is closed; then the channel is
// closed and [Receiver.Err] says why.
//
// A value the goroutine has read but not yet delivered when ctx ends is not
// lost: the next Recv, TryRecv or Chan returns it first.
func (r *Receiver[T]) Chan(ctx context.Context) <-chan T {
	out := make(chan T)
	p := &pump{ctx: ctx, done: make(chan struct{})}
	r.ahead.addPump(p)
	go r.pump(ctx, p, out)
	return out
}

// Err returns why the channel of the last Chan call was closed: nil at end
// of stream or while it is open, otherwise the error (ctx.Err(), an error
// wrapping os.ErrClosed, a decode error, ...).
func (r *Receiver[T]) Err() error {
	if e := r.chanErr.Load(); e != nil {
		return *e
	}
	return nil
}

func (r *Receiver[T]) pump(ctx context.Context, p *pump, out chan<- T) {
	var stopErr error
	defer func() {
		r.chanErr.Store(&stopErr)
		r.ahead.removePump(p)
		close(p.done)
		close(out)
	}()
	r.chanErr.Store(new(error))
	for {
		v, tag, err := r.recvTag(ctx, p)
		if err != nil {
			if err != io.EOF {
				stopErr = err
			}
			return
		}
		select {
		case out <- v:
		case <-ctx.Done():
			r.ahead.push(tagged[T]{v, tag})
			stopErr = ctx.Err()
			return
		case <-r.closed:
			stopErr = r.wrap(os.ErrClosed)
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

// pump is one running Chan goroutine.
type pump struct {
	ctx  context.Context
	done chan struct{}
}

// aheadQueue holds values read ahead by Chan pumps and handed back, and
// knows the running pumps, so that a receive can wait for a stopping pump to
// hand its value back before reading on.
type aheadQueue[T any] struct {
	mu    sync.Mutex
	items []tagged[T]
	pumps []*pump
	busy  atomic.Int32 // len(items) + len(pumps), read without mu
	wake  *wakeEvent
}

func (q *aheadQueue[T]) addPump(p *pump) {
	q.mu.Lock()
	q.pumps = append(q.pumps, p)
	q.busy.Add(1)
	q.mu.Unlock()
}

func (q *aheadQueue[T]) removePump(p *pump) {
	q.mu.Lock()
	defer q.mu.Unlock()
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
	q.wake.set(true)
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
		q.wake.set(false)
	}
	return it, true
}

// settle waits for every pump other than self whose context has ended to
// finish, so that the value it may hold is in the queue.
func (q *aheadQueue[T]) settle(self *pump) {
	if q.busy.Load() == 0 {
		return
	}
	q.mu.Lock()
	var stopping []*pump
	for _, p := range q.pumps {
		if p != self && p.ctx.Err() != nil {
			stopping = append(stopping, p)
		}
	}
	q.mu.Unlock()
	for _, p := range stopping {
		<-p.done
	}
}

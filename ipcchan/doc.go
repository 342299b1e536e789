// Package ipcchan gives Go channel semantics to inter-process communication.
//
// A [Sender] and a [Receiver] are the two ends of a typed channel whose
// messages cross a process boundary over some transport: a pipe, a FIFO, a
// socket, a message queue or a shared-memory ring (see package endpoints).
// They keep the semantics of a chan T: values arrive in order, whole and
// once; when every sender has closed, [Receiver.Recv] returns io.EOF after
// the last value and a range over [Receiver.All] ends; a full transport
// blocks [Sender.Send]; every blocking call honours a context.
//
//	tx, rx, err := endpoints.PipePair[Job]()
//	...
//	err = tx.Send(ctx, Job{ID: 1})   // in one process
//	job, err := rx.Recv(ctx)         // in another
//
// Values are encoded by a codec.Codec (the cheapest that fits T unless
// [WithCodec] chooses one); [Sender.SendRaw] and [Receiver.RecvRaw] carry
// a value's encoding as it is, in place on a shared-memory ring.
//
// [Select] waits on receivers of different element types at once, without a
// goroutine per case; [Chan] bridges to a native select statement.
//
// Every constructor takes options ([Option]) and refuses, with an error
// wrapping [ErrOption] that names it, one that does not apply. Errors are
// [OpError] values wrapping this package's sentinels ([ErrPeerGone],
// [ErrMessageTooLarge], ...), io.EOF, os.ErrClosed or a context's error.
//
// What a transport implements — the small MsgSender and MsgReceiver
// interfaces, which carry one message with a 32-bit tag at a time — and
// the Config its options make are in package transport, apart from this,
// the user's API (as database/sql/driver is apart from database/sql).
package ipcchan

// Package transport is what an endpoint author implements and uses: the
// interfaces between ipcchan's typed channels and the transports that move
// their messages (pipes, sockets, queues, shared memory, or one of your
// own), the configuration that options set, and the errors transports
// report. It is to package ipcchan what database/sql/driver is to
// database/sql: a program that sends and receives values needs only
// ipcchan and an endpoints constructor.
//
// A transport implements [MsgSender], [MsgReceiver] or both, and may add
// the optional interfaces: [Pollable] (Select waits on its descriptor),
// [Filer] (it can be handed to another process), [Flusher], [Failer]
// (WatchPeer can end its waits), [FileMsgSender] and [FileMsgReceiver]
// (descriptors travel with messages), [HandshakeDefaulter] and
// [MsgSizeLimiter] (the handshake), [RoomReceiver] (a large payload is read
// straight into the caller's memory). ipcchan.NewSender and
// ipcchan.NewReceiver wrap it in a typed channel.
//
// A constructor of an endpoint reads its options with [NewConfig], naming
// the options that apply to it: any other is refused by name, and so is a
// value out of an option's range, so that no option is ever silently
// ignored.
package transport

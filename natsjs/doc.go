// Package natsjs carries ipcchan's typed channels over NATS JetStream: a
// channel is a JetStream stream, a Sender publishes to it and a Receiver
// pulls from a durable consumer of it, so values outlive the processes
// that send and receive them, and (with a cluster and Replicas 3) the
// failure of a server node.
//
// By default a [Conn] runs an embedded NATS server with JetStream, shared
// by every process of the host that names the same store directory (see
// [WithStoreDir]); [WithURL] uses an existing cluster instead.
//
// A channel is opened by name by each end with [NewSender] and
// [NewReceiver], which return the ipcchan.Sender and ipcchan.Receiver of
// the main module: Send, Recv, All, Chan, Select work as on every other
// endpoint. The wire mapping is PROTOCOL.md §15 of the main repository;
// the guarantees by failure are in this module's README.
package natsjs

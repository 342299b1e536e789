package natsjs

import (
	"context"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A ConnOption configures [Connect].
type ConnOption interface {
	applyConn(*connConfig)
}

type connConfig struct {
	urls       string
	natsOpts   []nats.Option
	storeDir   string
	serverOpts *server.Options
}

type connOptionFunc func(*connConfig)

func (f connOptionFunc) applyConn(c *connConfig) { f(c) }

// WithURL makes Connect use the NATS cluster at urls, a comma-separated
// list ("nats://h1:4222,nats://h2:4222"), instead of an embedded server.
func WithURL(urls string) ConnOption {
	return connOptionFunc(func(c *connConfig) { c.urls = urls })
}

// WithNATSOptions passes o through to nats.Connect: TLS, UserInfo, Token,
// Nkey, UserCredentials (JWT), a name... Given with an embedded server,
// they apply to the connection to it (after the token natsjs sets).
func WithNATSOptions(o ...nats.Option) ConnOption {
	return connOptionFunc(func(c *connConfig) { c.natsOpts = append(c.natsOpts, o...) })
}

// WithStoreDir sets the directory of the embedded server's JetStream store
// and of its rendezvous files (server.lock, server.json). Processes of one
// host that name the same directory share one server. The default is
// $XDG_STATE_HOME/ipcchan/jetstream, else ~/.local/state/ipcchan/jetstream;
// it is made with mode 0700.
func WithStoreDir(dir string) ConnOption {
	return connOptionFunc(func(c *connConfig) { c.storeDir = dir })
}

// WithServerOptions makes the Conn run an embedded server node with the
// full options o (cluster, ports, name, ...). natsjs sets JetStream on and
// fills in StoreDir (from WithStoreDir or the default) only if unset; the
// rendezvous files are not used: a cluster node is configured, not
// discovered. Connect does not modify o.
func WithServerOptions(o *server.Options) ConnOption {
	return connOptionFunc(func(c *connConfig) { c.serverOpts = o })
}

// Conn is a connection to NATS JetStream, and possibly the embedded server
// it runs. It is safe for concurrent use. Close it when done.
type Conn struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	srv *server.Server
}

// Connect connects to JetStream: to the cluster of [WithURL], or to the
// embedded server of the store directory, starting it if no process of
// this host runs it. ctx bounds the connection and the server's start.
// Errors are *ipcchan.OpError.
func Connect(ctx context.Context, opts ...ConnOption) (*Conn, error) {
	return nil, errNotYet
}

// Close drains the connection and closes it, and shuts down the embedded
// server if this Conn runs it (another process sharing the store directory
// then takes it over). Close is idempotent; the Senders and Receivers made
// with c stop working.
func (c *Conn) Close() error { return nil }

// NATS returns the underlying NATS connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the JetStream context of the connection.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Server returns the embedded server this Conn runs, or nil if it runs none
// (another process runs it, or WithURL was given).
func (c *Conn) Server() *server.Server { return c.srv }

// DeleteChannel deletes the channel name: its stream, every value it still
// holds, its consumers and its end markers. A channel that has ended stays
// ended until it is deleted; deleting is how a name is reused. Deleting a
// channel that does not exist returns nil.
func (c *Conn) DeleteChannel(ctx context.Context, name string) error {
	return errNotYet
}

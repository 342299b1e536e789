package natsjs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
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
// Nkey, UserCredentials (JWT), a name... They are applied after natsjs's
// own (unlimited reconnects, no reconnect buffer, a ping every 2 s, the
// embedded server's token), so they may override them; overriding ReconnectBufSize breaks
// the order guarantee (see the README).
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
// full options o (cluster, ports, name, ...). natsjs turns JetStream on and
// fills in StoreDir (from WithStoreDir or the default) only if unset; the
// rendezvous files are not used: a cluster node is configured, not
// discovered. Connect copies o and does not modify it.
func WithServerOptions(o *server.Options) ConnOption {
	return connOptionFunc(func(c *connConfig) { c.serverOpts = o })
}

// Conn is a connection to NATS JetStream, and possibly the embedded server
// it runs. It is safe for concurrent use. Close it when done.
type Conn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu   sync.Mutex
	srv  *server.Server // the embedded server this Conn runs, if any
	lock *os.File       // dir/server.lock, held while srv runs (shared mode)

	dir       string // shared mode: the store dir; "" otherwise
	info      serverInfo
	stop      chan struct{} // closed by Close: ends the takeover watcher
	watchDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// serverInfo is the content of dir/server.json: how the processes sharing
// a store dir reach its server.
type serverInfo struct {
	URL   string `json:"url"`   // nats://127.0.0.1:<port>
	Token string `json:"token"` // 64 hex digits: 256 random bits the server requires
}

const (
	lockFile = "server.lock"
	infoFile = "server.json"
)

// DefaultStoreDir returns the store directory used when WithStoreDir is
// not given: $XDG_STATE_HOME/ipcchan/jetstream, else
// ~/.local/state/ipcchan/jetstream. It returns an error if neither
// $XDG_STATE_HOME nor the home directory is known.
func DefaultStoreDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ipcchan", "jetstream"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no store dir: set $XDG_STATE_HOME or $HOME, or pass natsjs.WithStoreDir: %w", err)
	}
	return filepath.Join(home, ".local", "state", "ipcchan", "jetstream"), nil
}

// Connect connects to JetStream: to the cluster of [WithURL], to the
// server node of [WithServerOptions], which it starts, or else to the
// embedded server of the store directory ([WithStoreDir]), which it starts
// if no process of this host runs it. When the process running a shared
// embedded server dies, another process sharing it starts it again on the
// same port with the same store, and the others reconnect on their own.
// ctx bounds the connection and the server's start. Errors are
// *ipcchan.OpError.
func Connect(ctx context.Context, opts ...ConnOption) (*Conn, error) {
	var cfg connConfig
	for _, o := range opts {
		if o != nil {
			o.applyConn(&cfg)
		}
	}
	c, err := connect(ctx, &cfg)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "connect", Endpoint: "nats", Err: err}
	}
	return c, nil
}

func baseOptions() []nats.Option {
	return []nats.Option{
		nats.ReconnectBufSize(-1), // a publish while disconnected fails at once: never replayed out of order
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(50*time.Millisecond, 50*time.Millisecond),
		// A server that stops answering (SIGSTOPped, cut off) while its
		// connections stay open is left after two unanswered pings:
		// within about 6 s, rather than the 4 minutes of nats.go's
		// defaults (2 minutes apart), during which every Send and Recv
		// through it would wait.
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(2),
	}
}

// pingInterval is how often a connection pings its server.
const pingInterval = 2 * time.Second

func connect(ctx context.Context, cfg *connConfig) (*Conn, error) {
	switch {
	case cfg.urls != "":
		if cfg.serverOpts != nil {
			return nil, errors.New("WithURL and WithServerOptions exclude each other: pass one")
		}
		nc, err := nats.Connect(cfg.urls, append(baseOptions(), cfg.natsOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.urls, err)
		}
		return newConn(nc, nil)
	case cfg.serverOpts != nil:
		o := *cfg.serverOpts
		o.JetStream = true
		if o.StoreDir == "" {
			dir, err := storeDir(cfg)
			if err != nil {
				return nil, err
			}
			o.StoreDir = dir
		}
		o.NoSigs = true
		srv, err := startServer(ctx, &o)
		if err != nil {
			return nil, err
		}
		nopts := append(baseOptions(), nats.InProcessServer(srv))
		if o.Authorization != "" {
			nopts = append(nopts, nats.Token(o.Authorization))
		}
		if o.Username != "" {
			nopts = append(nopts, nats.UserInfo(o.Username, o.Password))
		}
		nc, err := nats.Connect(srv.ClientURL(), append(nopts, cfg.natsOpts...)...)
		if err != nil {
			srv.Shutdown()
			return nil, err
		}
		return newConn(nc, srv)
	}
	dir, err := storeDir(cfg)
	if err != nil {
		return nil, err
	}
	return connectShared(ctx, dir, cfg.natsOpts)
}

func storeDir(cfg *connConfig) (string, error) {
	dir := cfg.storeDir
	if dir == "" {
		var err error
		if dir, err = DefaultStoreDir(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("store dir: %w", err)
	}
	return dir, nil
}

func newConn(nc *nats.Conn, srv *server.Server) (*Conn, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		if srv != nil {
			srv.Shutdown()
		}
		return nil, err
	}
	return &Conn{nc: nc, js: js, srv: srv}, nil
}

// startServer starts an embedded server with o and waits until it takes
// connections.
func startServer(ctx context.Context, o *server.Options) (*server.Server, error) {
	o.NoSigs = true
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	srv.Start()
	wait := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded server (store %s) not ready within %v: see whether its port is free", o.StoreDir, wait)
	}
	return srv, nil
}

// connectShared connects to the server of dir, starting it if no process
// runs it (it holds dir/server.lock).
func connectShared(ctx context.Context, dir string, user []nats.Option) (*Conn, error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store dir %s: %w (it must be this user's, mode 0700)", dir, err)
	}
	for {
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			c, err := startShared(ctx, dir, lock, user)
			if err != nil {
				lock.Close()
				return nil, err
			}
			return c, nil
		}
		if err != unix.EWOULDBLOCK {
			lock.Close()
			return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
		}
		// Another process runs the server: reach it through server.json,
		// which it writes once the server takes connections.
		info, err := readInfo(dir)
		if err == nil {
			nopts := append(baseOptions(), nats.Token(info.Token))
			nc, err := nats.Connect(info.URL, append(nopts, user...)...)
			if err == nil {
				c, err := newConn(nc, nil)
				if err != nil {
					lock.Close()
					return nil, err
				}
				c.dir, c.info, c.lock = dir, info, lock
				c.watch()
				return c, nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			lock.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			lock.Close()
			return nil, fmt.Errorf("store dir %s: the process holding %s serves no server yet: %w", dir, lockFile, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startShared starts the shared server of dir, whose lock the caller
// holds, and connects to it. It reuses the port and token of an existing
// server.json (a takeover: the other processes reconnect to that URL with
// that token), else takes a random port and a new token.
func startShared(ctx context.Context, dir string, lock *os.File, user []nats.Option) (*Conn, error) {
	srv, info, err := serveShared(ctx, dir)
	if err != nil {
		return nil, err
	}
	nopts := append(baseOptions(), nats.InProcessServer(srv), nats.Token(info.Token))
	nc, err := nats.Connect(info.URL, append(nopts, user...)...)
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	c, err := newConn(nc, srv)
	if err != nil {
		return nil, err
	}
	c.dir, c.info, c.lock = dir, info, lock
	return c, nil
}

// serveShared starts the server of dir (lock held) and publishes its
// server.json.
func serveShared(ctx context.Context, dir string) (*server.Server, serverInfo, error) {
	port, token := -1, ""
	if old, err := readInfo(dir); err == nil {
		if p, err := portOf(old.URL); err == nil {
			port, token = p, old.Token
		}
	}
	if token == "" {
		var b [32]byte
		rand.Read(b[:])
		token = hex.EncodeToString(b[:])
	}
	o := &server.Options{
		Host:          "127.0.0.1",
		Port:          port,
		Authorization: token,
		JetStream:     true,
		StoreDir:      dir,
		SyncAlways:    true, // a value acknowledged is on disk: else a SIGKILL of this process loses the last ones (measured: TestSharedServerOwnerKilled)
		NoLog:         true,
		NoSigs:        true,
	}
	srv, err := startServer(ctx, o)
	if err != nil && port != -1 {
		// The old port is taken (the server.json is stale): start afresh.
		var b [32]byte
		rand.Read(b[:])
		o.Port, o.Authorization = -1, hex.EncodeToString(b[:])
		srv, err = startServer(ctx, o)
	}
	if err != nil {
		return nil, serverInfo{}, err
	}
	info := serverInfo{URL: "nats://" + srv.Addr().String(), Token: o.Authorization}
	if err := writeInfo(dir, info); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, serverInfo{}, err
	}
	return srv, info, nil
}

func portOf(url string) (int, error) {
	_, p, err := net.SplitHostPort(url[len("nats://"):])
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// parseInfo parses the content of a server.json, which another process
// wrote: it accepts only a loopback nats:// URL and a 64-hex-digit token.
func parseInfo(b []byte) (serverInfo, error) {
	var info serverInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return serverInfo{}, fmt.Errorf("%s: %w", infoFile, err)
	}
	const pre = "nats://"
	if len(info.URL) <= len(pre) || info.URL[:len(pre)] != pre {
		return serverInfo{}, fmt.Errorf("%s: url %q is not nats://127.0.0.1:<port>", infoFile, info.URL)
	}
	host, port, err := net.SplitHostPort(info.URL[len(pre):])
	if err != nil || host != "127.0.0.1" {
		return serverInfo{}, fmt.Errorf("%s: url %q is not nats://127.0.0.1:<port>", infoFile, info.URL)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || strconv.Itoa(p) != port {
		return serverInfo{}, fmt.Errorf("%s: url %q has no valid port", infoFile, info.URL)
	}
	if t, err := hex.DecodeString(info.Token); err != nil || len(t) != 32 {
		return serverInfo{}, fmt.Errorf("%s: the token is not 64 hex digits", infoFile)
	}
	return info, nil
}

func readInfo(dir string) (serverInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return serverInfo{}, err
	}
	return parseInfo(b)
}

// writeInfo writes server.json (0600) through a temporary file and a
// rename, so that a reader never sees half of it.
func writeInfo(dir string, info serverInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, infoFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600) // CreateTemp makes it 0600 already; say so for the reader
	if err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, infoFile))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, infoFile), err)
	}
	return nil
}

// watch starts the goroutine of a Conn that shares a server another
// process runs: it waits for that process's lock and, once it has it (the
// process died or closed), starts the server again with the same port,
// token and store. The nats connection reconnects to it on its own.
//
// A blocking flock cannot be cancelled, so the watcher tries the lock
// every 100 ms: a takeover starts within about that of the owner's death.
func (c *Conn) watch() {
	c.stop = make(chan struct{})
	c.watchDone = make(chan struct{})
	go func() {
		defer close(c.watchDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			if err := unix.Flock(int(c.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			srv, _, err := serveShared(ctx, c.dir)
			cancel()
			if err != nil {
				// Let another process try.
				unix.Flock(int(c.lock.Fd()), unix.LOCK_UN)
				continue
			}
			c.mu.Lock()
			select {
			case <-c.stop:
				c.mu.Unlock()
				srv.Shutdown()
				srv.WaitForShutdown()
				return
			default:
			}
			c.srv = srv
			c.mu.Unlock()
			return
		}
	}()
}

// Close drains the connection and closes it, and shuts down the embedded
// server if this Conn runs it (another process sharing the store directory
// then takes it over). Close is idempotent; the Senders and Receivers made
// with c stop working.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.stop != nil {
			close(c.stop)
			<-c.watchDone
		}
		if err := c.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			c.closeErr = err
		}
		// Drain returns at once; wait for the connection to be closed.
		for i := 0; i < 500 && !c.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		c.nc.Close()
		c.mu.Lock()
		srv := c.srv
		c.mu.Unlock()
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		if c.lock != nil {
			c.lock.Close() // releases the flock: another process takes over
		}
	})
	if c.closeErr != nil {
		return &ipcchan.OpError{Op: "close", Endpoint: "nats", Err: c.closeErr}
	}
	return nil
}

// NATS returns the underlying NATS connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the JetStream context of the connection.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Server returns the embedded server this Conn runs, or nil if it runs none
// (another process runs it, or WithURL was given). A Conn that shares a
// server may start running it later, when the process running it dies.
func (c *Conn) Server() *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

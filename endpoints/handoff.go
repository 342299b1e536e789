package endpoints

import (
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"weak"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// EnvFiles is the environment variable through which [Attach] tells a child
// process which descriptor carries which named endpoint:
// "name=fd,name=fd,...".
const EnvFiles = "IPCCHAN_FILES"

// Handed is an endpoint on its way to a child process; see [Pass].
type Handed struct {
	name  string
	end   Passable
	share bool
}

// Passable is an endpoint that can be handed to another process:
// *ipcchan.Sender and *ipcchan.Receiver over a descriptor-backed transport.
type Passable interface {
	File() (*os.File, error)
	Close() error
}

// Pass names end for [Attach] or [Start]. The child picks it up with
// [InheritSender] or [InheritReceiver] and the same name, and the same
// element type and codec.
func Pass(name string, end Passable) Handed { return Handed{name: name, end: end} }

// Share is Pass without the move: end stays open in this process, so that it
// can be shared with several children (a results pipe that every worker
// writes to, say). Close it once the last child has started.
func Share(name string, end Passable) Handed { return Handed{name: name, end: end, share: true} }

// Attach adds the endpoints to cmd, to be inherited when it starts: each
// descriptor goes through cmd.ExtraFiles and all names through the
// IPCCHAN_FILES environment variable (cmd.Env is set from os.Environ() if it
// is nil).
//
// Endpoints given with [Pass] move to the child: Attach closes them in this
// process. Those given with [Share] stay open.
// release closes this process's copies of the descriptors; call it once
// cmd.Start has returned, whatever it returned, or the child will never see
// end of stream on a pipe whose write end this process still holds. [Start]
// does all of this.
//
// IPCCHAN_FILES in the child describes exactly what Attach gave cmd (over
// one or several calls): an IPCCHAN_FILES already in cmd.Env — this
// process's own, when cmd.Env came from os.Environ() in a process that was
// itself started with Start — names descriptors the child does not get,
// and is replaced.
//
// On error nothing is attached, and the endpoints are left open.
func Attach(cmd *exec.Cmd, ends ...Handed) (release func(), err error) {
	entries := attachedEntries(cmd)
	files := make([]*os.File, 0, len(ends))
	release = func() {
		for _, f := range files {
			f.Close()
		}
	}
	base := 3 + len(cmd.ExtraFiles)
	for _, h := range ends {
		if h.end == nil {
			release()
			return nil, fmt.Errorf("ipcchan: attach %q: no endpoint (nil): pass a Sender, Receiver or Conn made by a constructor", h.name)
		}
		if !validName(h.name) {
			release()
			return nil, fmt.Errorf("ipcchan: attach: endpoint name %q: use letters, digits, '_', '-' or '.'", h.name)
		}
		if _, dup := entries[h.name]; dup {
			release()
			return nil, fmt.Errorf("ipcchan: attach: endpoint name %q given twice", h.name)
		}
		if e, ok := sysvEntryOf(h.end); ok {
			entries[h.name] = e // a SysV queue has no descriptor: its identifier goes
			continue
		}
		f, err := h.end.File()
		if err != nil {
			release()
			return nil, fmt.Errorf("ipcchan: attach %q: %w", h.name, err)
		}
		entries[h.name] = strconv.Itoa(base + len(files))
		files = append(files, f)
		if r := ringOf(h.end); r != nil && r.bell != nil {
			// The ring's doorbells go with its memory: "name=M+R+W".
			bells, err := r.bellFiles()
			if err != nil {
				release()
				return nil, fmt.Errorf("ipcchan: attach %q: %w", h.name, err)
			}
			entries[h.name] += fmt.Sprintf("+%d+%d", base+len(files), base+len(files)+1)
			files = append(files, bells...)
		}
	}
	for _, h := range ends {
		markHandedOff(h.end)
		if !h.share {
			moveSubscription(h.end)
			h.end.Close()
		}
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, files...)
	rememberEntries(cmd, entries)
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, EnvFiles+"=") })
	cmd.Env = append(env, EnvFiles+"="+formatEntries(entries))
	return release, nil
}

// Start attaches the endpoints to cmd (see [Attach]), starts it, and closes
// this process's copies of the descriptors.
func Start(cmd *exec.Cmd, ends ...Handed) error {
	release, err := Attach(cmd, ends...)
	if err != nil {
		return err
	}
	defer release()
	return cmd.Start()
}

// InheritReceiver returns a Receiver on the endpoint that the parent process
// handed to this one under name (see [Start]). It fails with a clear error
// if IPCCHAN_FILES is missing or malformed, names no such endpoint, or names
// a descriptor that is not open, not a pipe, FIFO or stream socket, or not
// readable. Each endpoint can be inherited once. A unixgram receiver bound
// to an abstract name checks every datagram's sender as [ListenPacket]'s
// does, with the default check unless opts set one: give it the peer check
// option the parent gave ListenPacket ([AnyUser], say). Options: those of
// [FileReceiver] on what the descriptor is, or of [SysVReceiver] for a
// SysV queue.
func InheritReceiver[T any](name string, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	if e, ok, err := inheritedSysV(name); ok {
		if err != nil {
			return nil, err
		}
		return SysVReceiver[T](SysVQueueByID(e.id), e.sel, opts...)
	}
	fd, desc, info, err := claimInherited(name, useRead)
	if err != nil {
		return nil, err
	}
	defer info.dropBells()
	return receiverOnFD[T](fd, info, desc, opts)
}

// InheritSender returns a Sender on the endpoint that the parent process
// handed to this one under name; see [InheritReceiver]. Since the parent
// may have handed the same pipe write end to several children, atomic
// writes are on for pipes and FIFOs unless ipcchan.WithAtomicWrites(false)
// is given. Closing an inherited socket does not shut it down for the other
// processes that may hold it. Options: those of [FileSender] on what the
// descriptor is, or of [SysVSender] for a SysV queue (whose message type,
// unless WithTag says another, is the parent's).
func InheritSender[T any](name string, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	if e, ok, err := inheritedSysV(name); ok {
		if err != nil {
			return nil, err
		}
		if e.sel.Type < 1 || e.sel.Type > math.MaxUint32 {
			return nil, fmt.Errorf("ipcchan: inherit %q: %w: message type %d; a typed Sender sends types 1 to %d", name, ErrMsgType, e.sel.Type, uint32(math.MaxUint32))
		}
		// The parent's message type, unless the child asks for another.
		opts = append([]ipcchan.Option{ipcchan.WithTag(uint32(e.sel.Type))}, opts...)
		return SysVSender[T](SysVQueueByID(e.id), opts...)
	}
	fd, desc, info, err := claimInherited(name, useWrite)
	if err != nil {
		return nil, err
	}
	defer info.dropBells()
	return senderOnFD[T](fd, info, desc, true, opts)
}

// InheritConn returns the connection ([Conn], from [SocketPair] or
// [Listener.Accept]) that the parent process handed to this one under name
// with [Pass]; see [InheritReceiver]. S and R are this side's send and
// receive types: the parent's R and S. Options: those of [Dial] on the
// socket's network (a Unix stream, a seqpacket or a TCP socket).
func InheritConn[S, R any](name string, opts ...ipcchan.Option) (*Conn[S, R], error) {
	fd, desc, info, err := claimInherited(name, useConn)
	if err != nil {
		return nil, err
	}
	cfg, err := newConfig("open", desc, info.connOptions(), opts)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return newConn[S, R](fd, desc, cfg, cfg.PeerCheck(), nil)
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// attached holds, for each command Attach has attached endpoints to, the
// entries it gave it: what IPCCHAN_FILES must say in that child, whatever
// else cmd.Env says. Keys are weak pointers, dropped when the command is
// collected.
var attached sync.Map // weak.Pointer[exec.Cmd] -> map[string]string

// attachedEntries returns a copy of the entries Attach gave cmd so far.
func attachedEntries(cmd *exec.Cmd) map[string]string {
	if v, ok := attached.Load(weak.Make(cmd)); ok {
		return maps.Clone(v.(map[string]string))
	}
	return map[string]string{}
}

// rememberEntries records the entries Attach gave cmd.
func rememberEntries(cmd *exec.Cmd, entries map[string]string) {
	key := weak.Make(cmd)
	if _, loaded := attached.Swap(key, entries); !loaded {
		runtime.AddCleanup(cmd, func(k weak.Pointer[exec.Cmd]) { attached.Delete(k) }, key)
	}
}

// parseEntries parses "name=fd,name=sysvmq:ID:TYPE:FLAGS,...".
func parseEntries(v string) (map[string]string, error) {
	m := map[string]string{}
	if v == "" {
		return m, nil
	}
	for _, item := range strings.Split(v, ",") {
		name, val, ok := strings.Cut(item, "=")
		valid := ok && validName(name)
		if sv, isQueue := strings.CutPrefix(val, sysvEntryPrefix); isQueue {
			_, err := parseSysVEntry(sv)
			valid = valid && err == nil
		} else {
			_, _, err := parseFDs(val)
			valid = valid && err == nil
		}
		if !valid {
			return nil, fmt.Errorf("malformed entry %q (want name=fd, fd >= 3, name=fd+fd+fd for a ring and its doorbells, or name=%sID:TYPE:FLAGS)", item, sysvEntryPrefix)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("name %q appears twice", name)
		}
		m[name] = val
	}
	return m, nil
}

// parseFDs parses an entry's descriptors: "fd", or "fd+rbell+wbell" for a
// ring and its doorbells (bells then holds the two).
func parseFDs(val string) (fd int, bells []int, err error) {
	parts := strings.Split(val, "+")
	if len(parts) != 1 && len(parts) != 3 {
		return -1, nil, fmt.Errorf("%q: want fd or fd+fd+fd", val)
	}
	fds := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 3 {
			return -1, nil, fmt.Errorf("%q: descriptor %q", val, p)
		}
		fds[i] = n
	}
	return fds[0], fds[1:], nil
}

// ringOf returns the ring end under a Sender or Receiver, or nil.
func ringOf(end Passable) *ringEnd {
	var t any
	switch e := end.(type) {
	case interface{ Transport() transport.MsgSender }:
		t = e.Transport()
	case interface{ Transport() transport.MsgReceiver }:
		t = e.Transport()
	}
	switch r := t.(type) {
	case bellRing:
		return r.ringEnd
	case *ringEnd:
		return r
	}
	return nil
}

func formatEntries(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + m[n]
	}
	return strings.Join(parts, ",")
}

// markHandedOff tells an end that another process holds its descriptor
// too, so that closing it here must not shut a socket down or send an
// end-of-stream marker for that process.
func markHandedOff(end Passable) {
	switch e := end.(type) {
	case interface{ markHandedOff() }:
		e.markHandedOff()
	case interface{ Transport() transport.MsgSender }:
		if h, ok := e.Transport().(interface{ setHandedOff() }); ok {
			h.setHandedOff()
		}
	}
}

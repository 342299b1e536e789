package endpoints

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// A descriptor handed to this process — inherited from a parent (Inherit*)
// or opened by the caller (File*) — is examined once, here, and the
// endpoint made on it follows from what it really is: the same rules for
// every constructor, so that a Unix stream socket is never taken for a pipe
// nor a write end for a read end.

// fdClass is what kind of object a descriptor refers to.
type fdClass int

const (
	classPipe      fdClass = iota // a pipe or FIFO
	classSocket                   // a socket; fdInfo.sockType says which
	classMQueue                   // a POSIX message queue
	classRing                     // a shared-memory ring (memfd, POSIX shm or file)
	classBroadcast                // a shared-memory broadcast (broadcast.go)
	classEvent                    // an Event's shared memory
)

// fdInfo describes a descriptor.
type fdInfo struct {
	class    fdClass
	sockType int      // SO_TYPE of a socket
	unix     bool     // an AF_UNIX socket
	accMode  int      // O_RDONLY, O_WRONLY or O_RDWR
	ino      uint64   // its inode, for descriptions
	bells    *bellKey // an inherited ring's doorbells, registered (see claimInherited)
}

// name is the kind's word in descriptions.
func (i fdInfo) name() string {
	switch i.class {
	case classSocket:
		return "socket"
	case classMQueue:
		return "posix mq"
	case classRing:
		return "ring"
	case classBroadcast:
		return "broadcast"
	case classEvent:
		return "event"
	}
	return "fifo"
}

// inspectFD finds out what fd is. It returns an error for a descriptor that
// is not open, or that no endpoint works on (a regular file, a directory,
// a device).
func inspectFD(fd int) (fdInfo, error) {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fdInfo{}, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fdInfo{}, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	info := fdInfo{accMode: flags & unix.O_ACCMODE, ino: st.Ino}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFIFO:
		info.class = classPipe
	case st.Mode&unix.S_IFMT == unix.S_IFSOCK:
		info.class = classSocket
		if info.sockType, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
			return fdInfo{}, fmt.Errorf("descriptor %d: SO_TYPE: %w", fd, err)
		}
		info.unix = isUnixSocket(fd)
	case isRingFile(fd):
		info.class = classRing
	case isBroadcastFile(fd):
		info.class = classBroadcast
	case isEventFile(fd):
		info.class = classEvent
	case isMQueue(fd):
		info.class = classMQueue
	default:
		return fdInfo{}, fmt.Errorf("descriptor %d is a %s, not a pipe, FIFO, socket, message queue, ring, broadcast or event", fd, fileType(st.Mode))
	}
	return info, nil
}

// check says what is wrong with using the descriptor as want, or "".
func (i fdInfo) check(want use) string {
	switch {
	case want == useEvent && i.class != classEvent:
		return fmt.Sprintf("is a %s, not an event", i.name())
	case want != useEvent && i.class == classEvent:
		return "is an event: take it with InheritEvent"
	case want == useConn && i.class != classSocket:
		return fmt.Sprintf("is a %s, not a socket; the other end gave a Sender or Receiver", i.name())
	case want == useConn && i.sockType == unix.SOCK_DGRAM:
		return "is a datagram socket, not a connection; the other end gave a Sender or Receiver"
	case i.class == classSocket || i.class == classRing || i.class == classBroadcast:
		return "" // both directions on one descriptor
	case want == useWrite && i.accMode == unix.O_RDONLY:
		return "is open for reading only: it is a receiving end, not a sending one"
	case want == useRead && i.accMode == unix.O_WRONLY:
		return "is open for writing only: it is a sending end, not a receiving one"
	}
	return ""
}

// describe names an endpoint on the descriptor whose own name is name.
func (i fdInfo) describe(name string, want use) string {
	what := map[use]string{useRead: "read end", useWrite: "write end", useConn: "connection"}[want]
	return fmt.Sprintf("%s (%s:[%d] %s)", name, i.name(), i.ino, what)
}

// optionsFor is the set of options an end of kind info honours, to receive
// (send false) or to send.
func (i fdInfo) optionsFor(send bool) transport.OptionName {
	switch {
	case i.class == classSocket && i.sockType == unix.SOCK_SEQPACKET:
		if send {
			return optSend | transport.OptPeerCheck
		}
		return optRecv | transport.OptPeerCheck
	case i.class == classSocket && i.sockType == unix.SOCK_DGRAM:
		o := optMsgRecv
		if send {
			o = optMsgSend
		}
		if i.unix {
			o |= transport.OptPeerCheck
		}
		return o
	case i.class == classBroadcast:
		if send {
			return optBcastSend
		}
		return optBcastRecv
	case i.class == classMQueue, i.class == classRing:
		if send {
			return optMsgSend
		}
		return optMsgRecv
	case i.class == classSocket && i.unix:
		if send {
			return optStreamSend | transport.OptPeerCheck
		}
		return optStreamRecv | transport.OptPeerCheck | transport.OptRecvFiles
	case send:
		return optStreamSend
	}
	return optStreamRecv
}

// connOptions is the set of options a connection (a Conn) on a socket of
// kind info honours, as Dial's on its network.
func (i fdInfo) connOptions() transport.OptionName {
	switch {
	case i.sockType == unix.SOCK_SEQPACKET:
		return connOptions("unixpacket")
	case i.unix:
		return connOptions("unix")
	}
	return connOptions("tcp")
}

// checkHandedPeer applies cfg's peer check, if any, to the peer of fd, a
// Unix socket of kind info handed to this process, as Dial and DialPacket
// do: the process at the other end of a connection, the owner of the
// socket a unixgram sender sends to. (A unixgram receiver checks each
// datagram's sender; see dgramReceiver.checkSenders.)
func checkHandedPeer(fd int, info fdInfo, send bool, cfg *transport.Config) error {
	check := cfg.PeerCheck()
	switch {
	case check == nil || !info.unix:
		return nil
	case info.sockType != unix.SOCK_DGRAM:
		_, err := checkPeer(fd, check)
		return err
	case send:
		return checkReceiver(fd, check)
	}
	return nil
}

// receiverOnFD makes a Receiver on fd, which it takes over (closing it on
// error), as info says, with the options an end of that kind honours.
func receiverOnFD[T any](fd int, info fdInfo, desc string, opts []ipcchan.Option) (*ipcchan.Receiver[T], error) {
	cfg, err := newConfig("open", desc, info.optionsFor(false), opts)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := checkHandedPeer(fd, info, false, cfg); err != nil {
		unix.Close(fd)
		return nil, opErr("open", desc, err)
	}
	switch {
	case info.class == classMQueue:
		return newMQReceiverOn[T](fd, desc, cfg)
	case info.class == classRing:
		return ringReceiverOn[T](fd, desc, cfg)
	case info.class == classBroadcast:
		return broadcastOn(fd, desc, cfg, subscribe[T])
	case info.class == classSocket && (info.sockType == unix.SOCK_DGRAM || info.sockType == unix.SOCK_SEQPACKET):
		return newDgramReceiverOn[T](fd, desc, messageKindOf(fd, info.sockType), nil, cfg)
	case info.class == classSocket:
		return newStreamReceiverOn[T](fd, desc, socketKind, cfg)
	}
	return newStreamReceiverOn[T](fd, desc, fifoKind, cfg)
}

// senderOnFD makes a Sender on fd, which it takes over (closing it on
// error), as info says. The descriptor may be held by other processes too:
// a socket is not shut down on Close, and pipes and FIFOs get atomic writes
// as the caller's options say, with atomicDefault otherwise.
func senderOnFD[T any](fd int, info fdInfo, desc string, atomicDefault bool, opts []ipcchan.Option) (*ipcchan.Sender[T], error) {
	cfg, err := newConfig("open", desc, info.optionsFor(true), opts)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := checkHandedPeer(fd, info, true, cfg); err != nil {
		unix.Close(fd)
		return nil, opErr("open", desc, err)
	}
	switch {
	case info.class == classMQueue:
		return newMQSenderOn[T](fd, desc, cfg)
	case info.class == classRing:
		return ringSenderOn[T](fd, desc, cfg)
	case info.class == classBroadcast:
		return broadcastOn(fd, desc, cfg, broadcastSender[T])
	case info.class == classSocket && (info.sockType == unix.SOCK_DGRAM || info.sockType == unix.SOCK_SEQPACKET):
		return newDgramSenderOn[T](fd, desc, messageKindOf(fd, info.sockType), true, cfg)
	case info.class == classSocket:
		kind := socketKind
		kind.shutdown = false
		return newStreamSenderOn[T](fd, desc, kind, cfg)
	}
	kind := fifoKind
	kind.atomicWrites = atomicDefault
	return newStreamSenderOn[T](fd, desc, kind, cfg)
}

// mqueueMagic is the file system type of POSIX message queues.
const mqueueMagic = 0x19800202

// isMQueue reports whether fd is a POSIX message queue descriptor.
func isMQueue(fd int) bool {
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && fs.Type == mqueueMagic
}

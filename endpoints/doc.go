// Package endpoints gives typed ipcchan senders and receivers over every
// Linux IPC primitive, and the primitives themselves (mappings, semaphores,
// locks) for what is not a channel. Everything another program must speak
// to interoperate (frames, markers, the ring's layout) is specified in
// PROTOCOL.md at the repository's root.
//
// # Files, by family
//
// Byte streams, whose messages are frames (PROTOCOL.md §2):
//
//   - pipe.go: [PipePair], an anonymous pipe;
//   - fifo.go: [CreateFIFO], [OpenFIFOReceiver], [OpenFIFOSender];
//   - socket.go, listener.go: [Dial], [Listen] and [Listener], [SocketPair]
//     and [Conn], for Unix stream, Unix seqpacket and TCP connections, and
//     the peer checks [SameUser], [AllowIDs], [AnyUser];
//   - unixpath.go: socket files, made 0600 with O_EXCL and removed on Close;
//   - connmem.go: the receive memory a listener's connections share
//     (ipcchan.WithConnMemory);
//   - stream.go, stream_send.go, stream_recv.go: the byte-stream transport
//     (frames, the send buffer, PIPE_BUF writes, page-aligned writes of
//     large payloads and pipes grown for them, a receive buffer that grows
//     with what arrives, large payloads read straight into RecvInto's
//     destination); stream_files.go: descriptors with values on Unix stream
//     sockets (SCM_RIGHTS).
//
// Messages, one per datagram, record, queue message or ring record, all
// received through the one message-transport core in msgcore.go:
//
//   - packet.go, datagram.go: [ListenPacket], [DialPacket] for Unix datagram
//     and UDP sockets, and the seqpacket transport under [Conn];
//   - posixmq.go, posixmq_bands.go, posixmq_notify.go: POSIX message queues
//     ([CreateMQ], [OpenMQSender], [OpenMQReceiver], [MQPair], priority
//     bands [OpenMQBands], [NotifyMQ]);
//   - sysvmq.go, sysvmq_msg.go, sysvmq_handoff.go: System V queues
//     ([CreateSysVQueue], [SysVSender], [SysVReceiver], and msgsnd/msgrcv as
//     they are: [SysVQueue.Send], [SysVQueue.Receive]);
//   - queue_eos.go: the end-of-stream markers and escapes of both queues;
//   - ring.go, ring_write.go, ring_read.go, ring_layout.go: the
//     shared-memory ring ([RingPair], [FormatRing], [RingSender],
//     [RingReceiver]); zero copy through ipcchan.Sender.SendRaw and
//     ipcchan.Receiver.RecvRaw.
//
// Shared memory, semaphores and locks:
//
//   - mapping.go, shm.go: [Mapping] over a memfd ([NewMemfd]), a file
//     ([CreateFileMapping]), POSIX shm ([CreateShm]) or a SysV segment
//     ([CreateSysVShm]); mapfault.go: the guard that turns a peer's
//     truncation into [ErrCorrupt] instead of SIGBUS; view.go: [View], typed
//     access; cview.go: [CView], a C struct in the C-layout codec's layout;
//   - semaphore.go: [Semaphore], glibc's sem_t in pure Go (semfast.go:
//     its uncontended calls, one CAS and no lock, and what keeps Close
//     from unmapping the memory under them); sysvsem.go:
//     [SemSet], System V semaphores with undo; filelock.go: [FileLock];
//     tokens.go: each of them as a channel of tokens;
//   - event.go: [Event], a notification with a counter and a bit set,
//     waking every waiter of every process (PROTOCOL.md §14);
//     event_recv.go: its Receiver view, with a doorbell for Select.
//
// Handing endpoints to other processes and picking them up:
//
//   - handoff.go, inherit.go: [Start], [Attach], [Pass], [Share],
//     [InheritSender], [InheritReceiver], [InheritConn] (the IPCCHAN_FILES
//     variable);
//   - file.go, fdkind.go: [FileSender], [FileReceiver] over a descriptor of
//     any kind, which they recognise;
//   - leftovers.go: [ObjectName], [ObjectKey] and [Leftovers], for objects
//     a dead process left behind (cmd/ipcchan lists and removes them).
//
// What every file shares: options.go (which options each kind honours),
// errors.go (the error sentinels and wrapping), limits.go (errors that
// name the limit to raise), fdutil.go (descriptor helpers), guard.go (the
// in-flight guard Close waits on), typed.go (the typed ends over a
// transport).
//
// # Waiting, and what it holds
//
// Descriptors (pipes, FIFOs, sockets, POSIX queues) are non-blocking and
// waited on through the Go runtime's poller: an idle or waiting endpoint
// holds no thread. System calls that have no descriptor to poll — msgrcv
// and msgsnd on SysV queues, semop — and a ring end parked on its futex
// hold one OS thread while they wait (and none once they return);
// cancellation, Close and a watched peer's exit interrupt them within a
// fraction of a millisecond.
//
// # Who may reach a Unix socket
//
// A socket bound to a path is guarded by the file's permission (0600
// unless ipcchan.WithPerm says otherwise): only its owner can connect or
// send to it. An abstract name ("@name") has no permissions at all, so
// every endpoint on one checks the peer's credentials instead, and by
// default admits only processes running as this process's uid (root only
// if this process runs as root):
//
//   - [Listen] checks every connection it accepts (SO_PEERCRED) and closes a
//     refused one before reading anything from it ([Listener.Refused]
//     counts them);
//   - [Dial] checks the process that listens, and refuses to talk to
//     another user's listener;
//   - a unixgram Receiver ([ListenPacket], or an inherited one bound to an
//     abstract name) reads the sender's credentials with every datagram
//     (SO_PASSCRED) and drops each datagram a refused sender sent, an
//     end-of-stream marker included, without delivering it
//     ([RefusedDatagrams] counts them);
//   - [DialPacket] checks who owns the receiving socket, which the kernel
//     tells through NETLINK_SOCK_DIAG (Linux 5.3 or later); the check sees
//     the owner's uid, with PID 0 and GID -1, which the kernel does not
//     report (and UID -1 where the kernel cannot tell: refused by default).
//
// The options [SameUser] (the default, stated), [AllowIDs] (given uids and
// gids) and [AnyUser] (everybody), or ipcchan.WithPeerCheck (any check),
// replace the default check; on a path they add a check to the file's
// permission. A [SocketPair] and connections handed down ([InheritConn])
// are checked only if their options ask for it. TCP and UDP carry no
// credentials: whoever can reach the address can connect or send.
package endpoints

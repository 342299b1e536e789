// Package poller waits for file descriptors to become ready on the Go
// runtime's network poller, so that no goroutine or OS thread is held by an
// idle endpoint.
//
// An [FD] owns a non-blocking descriptor registered with the runtime poller
// (through os.NewFile and SyscallConn). [FD.Read] and [FD.Write] run a
// caller's non-blocking operation until it stops reporting EAGAIN, parking
// the goroutine in between, and give up promptly when the context is
// cancelled or the FD is closed. Cancellation uses a read or write deadline
// armed by context.AfterFunc, as net does for connect, so no watcher
// goroutine is needed.
//
// Objects without a descriptor (SysV queues, for example) are not handled
// here yet; they will get a lazily started shared goroutine that signals an
// eventfd, so that they too can be waited on through an FD.
package poller

"""Typed ends over any transport: the handshake, codecs, timeouts, iteration.

A transport moves ``(tag, payload)`` messages; :class:`Sender` and
:class:`Receiver` add what every ipcchan channel has on top (PROTOCOL.md §3):
the hello before the first message and its check, encoding and decoding,
end of stream, the watch on a peer process.
"""

import os
import select
import threading
import time
import warnings
from typing import Any, Generic, Iterator, NamedTuple, Optional, TypeVar

from ._codecs import BYTES, HELLO_TAG, MAX_HELLO, WIRE_VERSION, Codec, parse_hello
from ._errors import CorruptError, HandshakeError, MessageTooLarge, ReservedTagError

__all__ = ["Sender", "Receiver", "Message", "DEFAULT_MAX_MESSAGE", "Deadline"]

DEFAULT_MAX_MESSAGE = 16 << 20
"""A receiver's default limit on a payload: 16 MiB, as Go's."""

T = TypeVar("T")


class Message(NamedTuple):
    """A received value with its tag (``Receiver.recv_message``)."""

    tag: int
    value: Any


_POLL_MAX_MS = 2**31 - 1
"""The longest wait one poll() takes (a C int of milliseconds); longer ones poll again."""


class Deadline:
    """A point in time a wait must end by; None (or an infinite timeout) waits for ever.

    Raises ValueError for a timeout that is not a number (NaN).
    """

    def __init__(self, timeout: Optional[float]) -> None:
        if timeout is not None:
            if timeout != timeout:
                raise ValueError("ipcchan: the timeout is NaN: give seconds, or None to wait for ever")
            if timeout == float("inf"):
                timeout = None
            elif timeout < 0:
                timeout = 0
        self.at = None if timeout is None else time.monotonic() + timeout

    def remaining_ms(self, cap_ms: Optional[int] = None) -> int:
        """Milliseconds left for poll() (-1: for ever), at most cap_ms if given.

        At most what one poll() can wait: a longer deadline polls again.
        """
        if self.at is None:
            return -1 if cap_ms is None else cap_ms
        left = (self.at - time.monotonic()) * 1000 + 0.999
        ms = max(0, int(min(left, _POLL_MAX_MS)))
        return ms if cap_ms is None else min(ms, cap_ms)

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def check(self, what: str) -> None:
        """Raise TimeoutError if the deadline has passed."""
        if self.expired():
            raise TimeoutError("ipcchan: %s timed out" % what)


def socket_timeout(timeout: Optional[float]) -> Optional[float]:
    """timeout for socket.settimeout: None (blocking) for an infinite or longer than a year one.

    Raises ValueError for NaN.
    """
    Deadline(timeout)  # refuses NaN
    return None if timeout is not None and timeout > 365 * 86400 else timeout


def _take(lock: Any, deadline: "Deadline", what: str) -> None:
    """Take an end's lock by the deadline (TimeoutError if another thread holds it that long)."""
    if deadline.at is None:
        lock.acquire()
        return
    left = max(0.0, min(deadline.at - time.monotonic(), threading.TIMEOUT_MAX))
    if not lock.acquire(timeout=left):
        raise TimeoutError("ipcchan: %s timed out (another thread's was under way)" % what)


class PeerWatch:
    """Watches peer processes (pidfd where there is one, else kill(pid, 0))."""

    def __init__(self) -> None:
        self.pids: list = []
        self.fds: list = []
        self.gone: Optional[int] = None

    def add(self, pid: int) -> None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self.fds.append(pidfd_open(pid))
                self.pids.append(pid)
                return
            except OSError as e:
                if e.errno == 3:  # ESRCH
                    raise
        os.kill(pid, 0)  # ESRCH for a process that does not exist
        self.pids.append(pid)
        self.fds.append(-1)

    def check(self) -> Optional[int]:
        """Return the pid of a watched peer that has exited, else None."""
        if self.gone is not None:
            return self.gone
        for pid, fd in zip(self.pids, self.fds):
            if fd >= 0:
                p = select.poll()
                p.register(fd, select.POLLIN)
                if p.poll(0):
                    self.gone = pid
            elif not _alive(pid):
                self.gone = pid
        return self.gone

    def close(self) -> None:
        for fd in self.fds:
            if fd >= 0:
                os.close(fd)
        self.fds, self.pids = [], []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Sender(Generic[T]):
    """The sending end of a channel: ``send(value, tag=0)``, ``close()`` sends the end of stream.

    Made by the transport functions (``pipe``, ``open_fifo_sender``,
    ``inherit_sender``, ...). With the handshake on, the hello goes before
    the first message. A Sender is a context manager (``close`` on exit).
    Several threads may send on one Sender: each message goes whole, one
    send at a time (time spent waiting for another thread's send counts
    against a send's timeout); close() does not wait for them. Like a Python file, a
    Sender the garbage collector finds unclosed warns (ResourceWarning) and
    is closed: the end of stream goes if it can without waiting.
    """

    def __init__(self, transport: Any, codec: Codec = BYTES, handshake: bool = False,
                 tag: int = 0) -> None:
        self._closed = True  # until made: nothing for __del__ to do
        self._t = transport
        self.codec = codec
        try:
            self._hello = codec.hello() if handshake else None
            if self._hello is not None and len(self._hello) > transport.max_payload:
                raise MessageTooLarge("ipcchan: the %d-byte hello does not fit the transport's %d-byte messages"
                                      % (len(self._hello), transport.max_payload))
        except BaseException:
            transport.close()  # the Sender owned it
            raise
        self._greeted = False
        self.tag = tag
        self._lock = threading.Lock()
        self._closed = False

    @property
    def max_payload(self) -> int:
        """The longest payload this Sender sends."""
        return self._t.max_payload

    def fileno(self) -> int:
        """The descriptor behind the Sender (-1 for SysV queues)."""
        return self._t.fileno()

    def _greet(self, deadline: Deadline) -> None:
        if self._hello is not None and not self._greeted:
            self._t.send_msg(HELLO_TAG, self._hello, deadline)
            self._greeted = True

    def send(self, value: T, tag: Optional[int] = None, timeout: Optional[float] = None) -> None:
        """Encode value and send it with tag (the Sender's own by default).

        Waits while the channel is full, up to timeout seconds (None: for
        ever), then raises TimeoutError having sent nothing. Raises
        MessageTooLarge for a payload over the limit, ReservedTagError for a
        tag the transport reserves, BrokenPipeError once the receiver has
        gone, ValueError after close.
        """
        self.send_raw(self.codec.encode(value), tag, timeout)

    def send_raw(self, payload: bytes, tag: Optional[int] = None, timeout: Optional[float] = None) -> None:
        """Send an already encoded payload; as :meth:`send`."""
        if self._closed:
            raise ValueError("ipcchan: send on a closed Sender")
        tag = self.tag if tag is None else tag
        if not 0 <= tag <= 0xFFFFFFFF:
            raise ValueError("ipcchan: tag %d is not a uint32" % tag)
        if tag == HELLO_TAG and self._hello is not None:
            raise ReservedTagError("ipcchan: %#x is the hello's tag while the handshake is on" % tag)
        self._t.check_tag(tag)
        if len(payload) > self._t.max_payload:
            raise MessageTooLarge("ipcchan: a %d-byte message exceeds this channel's %d-byte limit%s"
                                  % (len(payload), self._t.max_payload, self._t.limit_hint))
        deadline = Deadline(timeout)
        _take(self._lock, deadline, "send")
        try:
            if self._closed:
                raise ValueError("ipcchan: send on a closed Sender")
            self._greet(deadline)
            self._t.send_msg(tag, payload, deadline)
        finally:
            self._lock.release()

    def close(self, timeout: Optional[float] = None) -> None:
        """Send the end of stream and release the end. Idempotent.

        On a byte stream the end is the close itself (a Unix socket is shut
        down for writing); on datagrams and queues it is a marker, which
        waits for room up to timeout seconds (default: 5); on seqpacket the
        shutdown.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._t.close_send(Deadline(5.0 if timeout is None else timeout))
        finally:
            self._t.close()

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def __del__(self) -> None:
        # As Python's files: an end collected unclosed warns (ResourceWarning)
        # and is closed, end of stream included if it can go without waiting.
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            warnings.warn("ipcchan: unclosed %r" % self, ResourceWarning, source=self)
        finally:
            try:
                self._t.close_send(Deadline(0))
            except Exception:
                pass
            finally:
                self._t.close()

    def __enter__(self) -> "Sender[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<ipcchan.Sender %s %s>" % (self._t, self.codec.name)


class Receiver(Generic[T]):
    """The receiving end of a channel: ``recv()``, iteration until end of stream.

    With the handshake on (the default on byte streams) nothing is decoded
    before the peer's hello, which must match ours: a differing hello, or a
    message before any hello, raises HandshakeError now and on every later
    receive. A Receiver is a context manager. Several threads may receive
    from one Receiver: each receive takes whole messages, one receive at a
    time, so that every message goes to exactly one of them (time spent
    waiting for another thread's receive counts against a receive's
    timeout); close() does not interrupt a receive under way in another
    thread. Like a Python file, a Receiver the garbage
    collector finds unclosed warns (ResourceWarning) and is closed.
    """

    def __init__(self, transport: Any, codec: Codec = BYTES, handshake: bool = False) -> None:
        self._closed = True  # until made: nothing for __del__ to do
        self._t = transport
        self.codec = codec
        try:
            self._hello = codec.hello() if handshake else None
            if self._hello is not None:
                if transport.max_payload < len(self._hello):
                    raise ValueError("ipcchan: a %d-byte message limit is less than the %d-byte hello that opens the "
                                     "channel: raise it, or turn the handshake off on both ends"
                                     % (transport.max_payload, len(self._hello)))
                transport.limit = min(transport.limit, MAX_HELLO)
        except BaseException:
            transport.close()  # the Receiver owned it
            raise
        self._greeted = False
        self._sticky: Optional[BaseException] = None
        self._watch = PeerWatch()
        self._lock = threading.Lock()
        self._closed = False
        self._ended = False

    @property
    def max_payload(self) -> int:
        """The longest payload this Receiver accepts (the rest is refused before allocating)."""
        return self._t.max_payload

    def fileno(self) -> int:
        """The descriptor behind the Receiver (-1 for SysV queues)."""
        return self._t.fileno()

    def watch_peer(self, pid: int) -> None:
        """Watch the process pid that sends to this Receiver.

        Once it has exited, receives return what it sent that is still queued
        and then raise PeerGoneError where they would wait. It matters on
        transports with no kernel end of stream (queues, datagrams); streams
        end by themselves. Raises ProcessLookupError for no such process,
        ValueError after close.
        """
        if self._closed:
            raise ValueError("ipcchan: watch_peer on a closed Receiver")
        self._watch.add(pid)

    def recv_message(self, timeout: Optional[float] = None) -> Optional[Message]:
        """Receive the next value with its tag, or None at the end of stream.

        Waits up to timeout seconds (None: for ever) and then raises
        TimeoutError, having taken nothing. Raises HandshakeError (sticky),
        MessageTooLarge for a message over the limit (skipped: the next
        receive goes on), CorruptError for malformed input, PeerGoneError
        when a watched peer has gone, ValueError after close.
        """
        deadline = Deadline(timeout)
        _take(self._lock, deadline, "receive")
        try:
            return self._recv_message(deadline)
        finally:
            self._lock.release()

    def _recv_message(self, deadline: Deadline) -> Optional[Message]:
        if self._closed:
            raise ValueError("ipcchan: receive on a closed Receiver")
        if self._sticky is not None:
            raise self._sticky
        if self._ended:
            return None
        while True:
            try:
                m = self._t.recv_msg(deadline, self._watch)
            except MessageTooLarge as e:
                if self._hello is not None and not self._greeted:
                    self._sticky = HandshakeError(
                        "ipcchan: handshake refused: the first message is longer than any hello (%s): the peer does "
                        "not speak the handshake (a raw peer needs handshake=False on this side)" % e)
                    raise self._sticky from None
                raise
            if m is None:
                self._ended = True
                return None
            tag, payload = m
            if self._hello is not None:
                if tag == HELLO_TAG:
                    err = _check_hello(bytes(payload), self._hello)
                    if err is not None:
                        self._sticky = HandshakeError("ipcchan: handshake refused: " + err)
                        raise self._sticky
                    if not self._greeted:
                        self._greeted = True
                        self._t.limit = self._t.max_payload
                    continue
                if not self._greeted:
                    self._sticky = HandshakeError(
                        "ipcchan: handshake refused: a message came before any hello: the peer does not speak the "
                        "handshake (a raw peer needs handshake=False on this side)")
                    raise self._sticky
            try:
                value = self.codec.decode(payload)
            except CorruptError:
                raise
            except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as e:
                raise CorruptError("ipcchan: %s: cannot decode a %d-byte payload: %s" % (self.codec.name, len(payload), e)) from None
            return Message(tag, value)

    def recv(self, timeout: Optional[float] = None) -> T:
        """Receive the next value; raise EOFError at the end of stream. See :meth:`recv_message`."""
        m = self.recv_message(timeout)
        if m is None:
            raise EOFError("ipcchan: end of stream")
        return m.value

    def __iter__(self) -> Iterator[T]:
        """Yield every value until the end of stream."""
        while True:
            m = self.recv_message()
            if m is None:
                return
            yield m.value

    def messages(self) -> Iterator[Message]:
        """Yield every (tag, value) until the end of stream."""
        while True:
            m = self.recv_message()
            if m is None:
                return
            yield m

    def close(self) -> None:
        """Release the end. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._watch.close()
        self._t.close()

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def __del__(self) -> None:
        # As Python's files: an end collected unclosed warns (ResourceWarning)
        # and is closed.
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            warnings.warn("ipcchan: unclosed %r" % self, ResourceWarning, source=self)
        finally:
            self._watch.close()
            self._t.close()

    def __enter__(self) -> "Receiver[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<ipcchan.Receiver %s %s>" % (self._t, self.codec.name)


def _check_hello(peer: bytes, ours: bytes) -> Optional[str]:
    try:
        version, name, fp = parse_hello(peer)
    except ValueError as e:
        return str(e)
    _, our_name, our_fp = parse_hello(ours)
    if version != WIRE_VERSION:
        return "the peer speaks wire version %d, this side %d" % (version, WIRE_VERSION)
    if name != our_name:
        return "the peer encodes with codec %r, this side decodes %r" % (name, our_name)
    if fp != our_fp:
        return "the peer sends another element type (fingerprint %016x, this side %016x)" % (fp, our_fp)
    return None


def wait_fd(fd: int, events: int, deadline: Deadline, watch: Optional[PeerWatch], what: str) -> bool:
    """Wait until fd has events; return False if a watched peer is gone first.

    Raises TimeoutError at the deadline. Wakes at least every 50 ms to
    check watched peers without a pidfd.
    """
    p = select.poll()
    p.register(fd, events)
    polled = False
    if watch is not None:
        for wfd in watch.fds:
            if wfd >= 0:
                p.register(wfd, select.POLLIN)
                polled = True
    cap = 50 if watch is not None and watch.pids and not polled else None
    while True:
        ready = p.poll(deadline.remaining_ms(cap))
        for rfd, _ in ready:
            if rfd == fd:
                return True
        if watch is not None and watch.check() is not None:
            return False
        deadline.check(what)

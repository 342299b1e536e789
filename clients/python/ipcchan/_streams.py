"""Byte streams: frames on pipes, FIFOs and Unix stream sockets (PROTOCOL.md §2).

Each message is an 8-byte header (payload length, tag; big-endian) and the
payload. The handshake (§3) is on by default, as on the Go side.
"""

import errno
import os
import select
import socket
import stat
import struct
import time
from typing import Optional, Tuple

from ._codecs import BYTES, Codec
from ._core import DEFAULT_MAX_MESSAGE, Deadline, PeerWatch, Receiver, Sender, socket_timeout, wait_fd
from ._sockets import check_listener
from ._errors import CorruptError, MessageTooLarge, PeerGoneError, ReservedTagError, TruncatedError

__all__ = ["pipe", "fd_sender", "fd_receiver", "open_fifo_sender", "open_fifo_receiver",
           "connect_unix", "PIPE_BUF"]

PIPE_BUF = 4096
_HEADER = struct.Struct(">II")
_READ = 1 << 16


class StreamTransport:
    """Frames over one descriptor (owned: closed by close())."""

    def __init__(self, fd: int, name: str, max_message: int = DEFAULT_MAX_MESSAGE,
                 atomic: bool = False) -> None:
        self.fd = fd
        self.name = name
        st = os.fstat(fd)
        self.is_socket = stat.S_ISSOCK(st.st_mode)
        self.is_fifo = stat.S_ISFIFO(st.st_mode)
        os.set_blocking(fd, False)
        self.atomic = atomic
        self.max_payload = min(max_message, PIPE_BUF - 8) if atomic else min(max_message, 0xFFFFFFFF)
        self.limit = self.max_payload
        self.limit_hint = (" (frames on a shared pipe or FIFO are written whole, at most 4096 bytes: pass atomic=False "
                           "if this end has a single writer)") if atomic else " (raise max_message on both ends)"
        self._rest: Optional[memoryview] = None  # the unwritten rest of a frame a send began
        self._buf = bytearray()
        self._skip = 0
        self._eof = False

    def fileno(self) -> int:
        return self.fd

    def __repr__(self) -> str:
        return self.name

    def check_tag(self, tag: int) -> None:
        if self.is_socket and tag >= 0x80000000:
            raise ReservedTagError("ipcchan: tags from 0x80000000 up are reserved on Unix stream sockets (descriptors)")

    # -- sending

    def send_msg(self, tag: int, payload: bytes, deadline: Deadline) -> None:
        if self._rest:
            # A send interrupted inside its frame (KeyboardInterrupt, or any
            # exception a signal handler raised) left the rest of it: it goes
            # first, or this frame's bytes would land inside that one.
            self._write(deadline)
        frame = memoryview(_HEADER.pack(len(payload), tag) + bytes(payload))
        self._rest = frame
        try:
            self._write(deadline)
        except BaseException:
            if len(self._rest) == len(frame):
                self._rest = None  # nothing of it went: it is not sent
            raise

    def _write(self, deadline: Deadline) -> None:
        """Write self._rest, the rest of a frame; once part of it is out, whatever the deadline."""
        started = False
        while self._rest:
            try:
                n = os.write(self.fd, self._rest)
            except BlockingIOError:
                wait_fd(self.fd, select.POLLOUT, Deadline(None) if started else deadline, None, "send")
                continue
            self._rest = self._rest[n:]
            # Part of the frame is out: it must be finished whatever the
            # deadline, or the stream would be cut inside a frame.
            started = True
        self._rest = None

    def close_send(self, deadline: Deadline) -> None:
        if self.is_socket:
            sock = socket.socket(fileno=os.dup(self.fd))
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                sock.close()

    # -- receiving

    def _fill(self, deadline: Deadline, watch: Optional[PeerWatch]) -> None:
        """Read what has arrived into the buffer; set _eof at the end."""
        if self.is_fifo:
            # A FIFO read before any writer has come returns 0 bytes, which is
            # no end; poll reports the hang-up only after a writer has come
            # and gone (PROTOCOL.md §2), so wait for it first.
            if not wait_fd(self.fd, select.POLLIN, deadline, watch, "receive"):
                raise PeerGoneError("ipcchan: the peer (pid %d) has exited" % watch.gone)  # type: ignore
        while True:
            try:
                data = os.read(self.fd, _READ)
            except BlockingIOError:
                if not wait_fd(self.fd, select.POLLIN, deadline, watch, "receive"):
                    raise PeerGoneError("ipcchan: the peer (pid %d) has exited" % watch.gone)  # type: ignore
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self._eof = True
            else:
                self._buf += data
            return

    def recv_msg(self, deadline: Deadline, watch: Optional[PeerWatch]) -> Optional[Tuple[int, bytes]]:
        while True:
            if self._skip:
                n = min(self._skip, len(self._buf))
                del self._buf[:n]
                self._skip -= n
            if not self._skip and len(self._buf) >= 8:
                length, tag = _HEADER.unpack_from(self._buf)
                if length > self.limit:
                    del self._buf[:8]
                    self._skip = length
                    raise MessageTooLarge("ipcchan: a %d-byte frame exceeds the %d-byte limit: skipped (raise max_message "
                                          "on this side, or send less)" % (length, self.limit))
                if len(self._buf) >= 8 + length:
                    payload = bytes(self._buf[8:8 + length])
                    del self._buf[:8 + length]
                    if self.is_socket and tag & 0x80000000:
                        # A frame carrying descriptors: this end takes none,
                        # so the kernel closed them; drop the count.
                        if len(payload) < 4:
                            raise CorruptError("ipcchan: a frame marked as carrying descriptors has no count: dropped")
                        payload, tag = payload[4:], tag & 0x7FFFFFFF
                    return tag, payload
            if self._eof:
                if self._buf or self._skip:
                    n = len(self._buf) + self._skip
                    self._buf.clear()
                    self._skip = 0
                    raise TruncatedError("ipcchan: the stream ended inside a frame (%d bytes missing or left over)" % n)
                return None
            self._fill(deadline, watch)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def fd_sender(fd: int, codec: Codec = BYTES, handshake: bool = True, atomic: bool = False,
              tag: int = 0, max_message: int = DEFAULT_MAX_MESSAGE) -> Sender:
    """Return a Sender writing frames to descriptor fd (a pipe, FIFO or stream socket), which it owns.

    atomic=True writes each frame whole in one write of at most 4096 bytes
    and refuses longer messages, for a pipe or FIFO several processes write
    to (PROTOCOL.md §2).
    """
    return Sender(StreamTransport(fd, "fd %d" % fd, max_message, atomic), codec, handshake, tag)


def fd_receiver(fd: int, codec: Codec = BYTES, handshake: bool = True,
                max_message: int = DEFAULT_MAX_MESSAGE) -> Receiver:
    """Return a Receiver reading frames from descriptor fd, which it owns.

    A frame longer than max_message is refused before anything is allocated
    for it (MessageTooLarge) and skipped.
    """
    return Receiver(StreamTransport(fd, "fd %d" % fd, max_message), codec, handshake)


def pipe(codec: Codec = BYTES, handshake: bool = True) -> Tuple[Sender, Receiver]:
    """Return the two ends of a new anonymous pipe: (Sender, Receiver)."""
    r, w = os.pipe()
    return fd_sender(w, codec, handshake), fd_receiver(r, codec, handshake)


def open_fifo_sender(path: str, codec: Codec = BYTES, handshake: bool = True, atomic: bool = True,
                     timeout: Optional[float] = None) -> Sender:
    """Open the FIFO at path for writing and return a Sender.

    Waits up to timeout seconds (None: for ever) for a reader to open it,
    then raises TimeoutError. Frames are written whole, at most 4096 bytes
    (atomic), unless atomic=False: a FIFO may have several writers.
    """
    deadline = Deadline(timeout)
    delay = 0.001
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            break
        except OSError as e:
            if e.errno != errno.ENXIO:  # no reader yet
                raise
        deadline.check("opening the FIFO %s for writing (no reader)" % path)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    s = fd_sender(fd, codec, handshake, atomic)
    s._t.name = "FIFO " + path
    return s


def open_fifo_receiver(path: str, codec: Codec = BYTES, handshake: bool = True,
                       max_message: int = DEFAULT_MAX_MESSAGE) -> Receiver:
    """Open the FIFO at path for reading and return a Receiver.

    Does not wait for a writer; the stream ends once a writer has come and
    every writer has gone, with nothing left to read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    r = fd_receiver(fd, codec, handshake, max_message)
    r._t.name = "FIFO " + path
    return r


def connect_unix(path: str, send_codec: Codec = BYTES, recv_codec: Optional[Codec] = None,
                 handshake: bool = True, max_message: int = DEFAULT_MAX_MESSAGE,
                 timeout: Optional[float] = None, any_user: bool = False) -> Tuple[Sender, Receiver]:
    """Connect to the Unix stream socket at path (``@name``: abstract) and return (Sender, Receiver).

    Each direction has its own hello. Closing the Sender shuts the socket
    down for writing (the peer's end of stream); the Receiver reads on. On
    an abstract name a listener running as another user is refused with
    PermissionError unless any_user is true (as on the Go side).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(socket_timeout(timeout))
    try:
        sock.connect("\0" + path[1:] if path.startswith("@") else path)
    except BaseException:
        sock.close()
        raise
    check_listener(sock, path, any_user)
    fd = sock.detach()
    tx = fd_sender(os.dup(fd), send_codec, handshake)
    rx = fd_receiver(fd, recv_codec or send_codec, handshake, max_message)
    tx._t.name = rx._t.name = "unix " + path
    return tx, rx

"""Datagrams and sequenced packets (PROTOCOL.md §6).

Each message is one datagram or record: a 4-byte big-endian tag, then the
payload. On a Unix datagram socket a sender's close sends the 4-byte marker
``FF FF FF FF`` and a receiver ends after one per sender; on a seqpacket
socket the end is the peer's shutdown. No hello by default (as on the Go
side); pass ``handshake=True`` on both ends to have one.
"""

import errno
import os
import select
import socket
import struct
from typing import Optional, Tuple

from ._codecs import BYTES, Codec
from ._core import DEFAULT_MAX_MESSAGE, Deadline, PeerWatch, Receiver, Sender, socket_timeout, wait_fd
from ._errors import CorruptError, MessageTooLarge, PeerGoneError, ReservedTagError

__all__ = ["check_listener", "connect_seqpacket", "datagram_sender", "datagram_receiver", "socket_sender",
           "socket_receiver", "EOS_TAG"]

EOS_TAG = 0xFFFFFFFF
_TAG = struct.Struct(">I")
_POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)


def _address(path: str) -> str:
    return "\0" + path[1:] if path.startswith("@") else path


_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


def check_listener(sock: socket.socket, path: str, any_user: bool) -> None:
    """Refuse (PermissionError, closing sock) a listener on an abstract name run by another user.

    An abstract name has no file permission, so anyone may listen on it:
    as the Go side does by default, a connection to one is refused unless
    the listener runs as this process's real uid, or any_user is given.
    """
    if not path.startswith("@") or any_user:
        return
    pid, uid, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    if uid != os.getuid():
        sock.close()
        raise PermissionError("ipcchan: %s is served by pid %d running as uid %d, not this process's uid %d (an abstract "
                              "name has no permissions, so only the same user is trusted by default; pass any_user=True "
                              "to trust it)" % (path, pid, uid, os.getuid()))


def _sndbuf_limit(sock: socket.socket) -> int:
    """The largest datagram a Unix socket can send: its send buffer, less the kernel's overhead."""
    return max(0, sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 32)


class PacketTransport:
    """Messages as datagrams or records on one socket (owned)."""

    def __init__(self, sock: socket.socket, name: str, max_message: int = DEFAULT_MAX_MESSAGE,
                 senders: int = 1) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.name = name
        self.seqpacket = sock.type == socket.SOCK_SEQPACKET
        self.max_payload = min(max_message, _sndbuf_limit(sock) - 4) if sock.family == socket.AF_UNIX else max_message
        self.limit = max_message
        self.limit_hint = " (a datagram holds at most the socket's send buffer: raise SO_SNDBUF, or send less)"
        self.senders = senders
        self.markers = 0
        self.refused = 0
        """Datagrams dropped: malformed ones, and those of senders the uid check refused."""
        self.check_uid: Optional[int] = None
        """If set, datagrams whose sender does not run as this uid are dropped unread (SO_PASSCRED)."""

    def fileno(self) -> int:
        return self.sock.fileno()

    def __repr__(self) -> str:
        return self.name

    def check_tag(self, tag: int) -> None:
        if not self.seqpacket and tag == EOS_TAG:
            raise ReservedTagError("ipcchan: tag 0xFFFFFFFF is the datagram end-of-stream marker")

    def send_msg(self, tag: int, payload: bytes, deadline: Deadline) -> None:
        data = _TAG.pack(tag) + bytes(payload)
        while True:
            try:
                self.sock.send(data)
                return
            except BlockingIOError:
                wait_fd(self.sock.fileno(), select.POLLOUT, deadline, None, "send")
            except OSError as e:
                if e.errno in (errno.EMSGSIZE, errno.ENOBUFS):
                    raise MessageTooLarge("ipcchan: a %d-byte datagram is too large for the socket%s"
                                          % (len(data), self.limit_hint)) from None
                if e.errno in (errno.ECONNREFUSED, errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE):
                    # A datagram socket whose receiver has closed refuses the
                    # next send, and is disconnected from then on (ENOTCONN).
                    raise BrokenPipeError(errno.EPIPE, "ipcchan: %s: the receiver has gone (%s)"
                                          % (self.name, os.strerror(e.errno))) from None
                raise

    def close_send(self, deadline: Deadline) -> None:
        if self.seqpacket:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        try:
            self.send_msg(EOS_TAG, b"", deadline)
        except (ConnectionRefusedError, FileNotFoundError, BrokenPipeError):
            pass  # the receiver has gone: nobody to tell

    def recv_msg(self, deadline: Deadline, watch: Optional[PeerWatch]) -> Optional[Tuple[int, bytes]]:
        while True:
            if not self.seqpacket and self.markers >= self.senders:
                return None
            peek = bytearray(1)
            try:
                # The next datagram's real length (MSG_TRUNC), without taking it
                # and without allocating what it announces.
                n = self.sock.recv_into(peek, 1, socket.MSG_PEEK | socket.MSG_TRUNC)
            except BlockingIOError:
                if not wait_fd(self.sock.fileno(), select.POLLIN, deadline, watch, "receive"):
                    raise PeerGoneError("ipcchan: the peer (pid %d) has exited without ending its stream" % watch.gone)  # type: ignore
                continue
            except (ConnectionResetError, ConnectionRefusedError) as e:
                raise PeerGoneError("ipcchan: the peer has gone: %s" % e) from None
            if n == 0 and self.seqpacket:
                # The end, or an empty record? Take whatever is there; the
                # kernel reports the end only once the peer has hung up
                # with nothing queued (as the Go receiver tells them apart).
                self.sock.recv_into(peek, 1)
                if self._hung_up() and self._peek_len() == 0:
                    return None
                self.refused += 1
                raise CorruptError("ipcchan: an empty record, shorter than its tag, was dropped")
            if self.check_uid is not None:
                # Read the sender's credentials with it (at most the limit: the
                # kernel drops the rest); drop, unread, what another user sent.
                data, anc, _, _ = self.sock.recvmsg(min(max(n, 1), self.limit + 5), socket.CMSG_SPACE(_UCRED.size))
                uid = None
                for level, typ, cdata in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS and len(cdata) >= _UCRED.size:
                        uid = _UCRED.unpack_from(cdata)[1]
                if uid != self.check_uid:
                    self.refused += 1
                    continue
            elif n > self.limit + 4:
                data = b""
                self.sock.recv_into(peek, 1)  # take it off the queue: the kernel drops the rest
            else:
                data = self.sock.recv(max(n, 1))
            if n > self.limit + 4:
                raise MessageTooLarge("ipcchan: a %d-byte datagram exceeds the %d-byte limit: discarded (raise "
                                      "max_message on this side, or send less)" % (n - 4, self.limit))
            if len(data) < 4:
                self.refused += 1
                raise CorruptError("ipcchan: a %d-byte datagram, shorter than its tag, was dropped" % len(data))
            tag = _TAG.unpack_from(data)[0]
            if not self.seqpacket and tag == EOS_TAG:
                if len(data) == 4:
                    self.markers += 1
                    continue
                raise CorruptError("ipcchan: a datagram with the marker's tag and a payload was dropped")
            return tag, data[4:]

    def _hung_up(self) -> bool:
        """Whether the seqpacket peer has shut down (an empty record is not the end)."""
        p = select.poll()
        p.register(self.sock.fileno(), select.POLLIN | _POLLRDHUP)
        return any(ev & (select.POLLHUP | _POLLRDHUP) for _, ev in p.poll(0))

    def _peek_len(self) -> int:
        try:
            return self.sock.recv_into(bytearray(1), 1, socket.MSG_PEEK | socket.MSG_TRUNC | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        self.sock.close()


def socket_sender(sock: socket.socket, codec: Codec = BYTES, handshake: bool = False, tag: int = 0) -> Sender:
    """Return a Sender on a connected SOCK_SEQPACKET or SOCK_DGRAM socket, which it owns."""
    return Sender(PacketTransport(sock, "%s socket %d" % (_kind(sock), sock.fileno())), codec, handshake, tag)


def socket_receiver(sock: socket.socket, codec: Codec = BYTES, handshake: bool = False, senders: int = 1,
                    max_message: int = DEFAULT_MAX_MESSAGE) -> Receiver:
    """Return a Receiver on a SOCK_SEQPACKET or bound SOCK_DGRAM socket, which it owns.

    A datagram receiver ends after ``senders`` end-of-stream markers.
    """
    return Receiver(PacketTransport(sock, "%s socket %d" % (_kind(sock), sock.fileno()), max_message, senders),
                    codec, handshake)


def _kind(sock: socket.socket) -> str:
    return "unixpacket" if sock.type == socket.SOCK_SEQPACKET else "unixgram"


def connect_seqpacket(path: str, send_codec: Codec = BYTES, recv_codec: Optional[Codec] = None,
                      handshake: bool = False, max_message: int = DEFAULT_MAX_MESSAGE,
                      timeout: Optional[float] = None, any_user: bool = False) -> Tuple[Sender, Receiver]:
    """Connect to the Unix seqpacket socket at path (Go's "unixpacket") and return (Sender, Receiver).

    Closing the Sender shuts the socket down for writing: the peer's end of
    stream. The Receiver ends at the peer's shutdown. On an abstract name
    (``@name``) a listener running as another user is refused with
    PermissionError unless any_user is true.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(socket_timeout(timeout))
    try:
        sock.connect(_address(path))
    except BaseException:
        sock.close()
        raise
    check_listener(sock, path, any_user)
    other = sock.dup()
    tx = socket_sender(sock, send_codec, handshake)
    rx = socket_receiver(other, recv_codec or send_codec, handshake, max_message=max_message)
    tx._t.name = rx._t.name = "unixpacket " + path
    return tx, rx


def datagram_sender(path: str, codec: Codec = BYTES, handshake: bool = False, tag: int = 0) -> Sender:
    """Return a Sender of datagrams to the Unix datagram socket bound at path (``@name``: abstract).

    close() sends the end-of-stream marker.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(_address(path))
    except BaseException:
        sock.close()
        raise
    s = socket_sender(sock, codec, handshake, tag)
    s._t.name = "unixgram " + path
    return s


def datagram_receiver(path: str, codec: Codec = BYTES, handshake: bool = False, senders: int = 1,
                      max_message: int = DEFAULT_MAX_MESSAGE, any_user: bool = False) -> Receiver:
    """Bind a Unix datagram socket at path (``@name``: abstract) and return its Receiver.

    It ends after ``senders`` end-of-stream markers; a datagram over
    max_message is discarded (MessageTooLarge) and one shorter than its
    tag dropped (CorruptError), and the next receive goes on. A path is
    made 0600. On an abstract name, which has no permission, datagrams
    (markers included) from senders not running as this process's real
    uid are dropped unread, as the Go receiver does, unless any_user is
    true. close() does not remove the path: the caller made it, the
    caller removes it.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(_address(path))
        if not path.startswith("@"):
            os.chmod(path, 0o600)
    except BaseException:
        sock.close()
        raise
    r = socket_receiver(sock, codec, handshake, senders, max_message)
    r._t.name = "unixgram " + path
    if path.startswith("@") and not any_user:
        r._t.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        r._t.check_uid = os.getuid()
    return r

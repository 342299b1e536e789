"""Message queues (PROTOCOL.md §7): POSIX (``mq_*``) and SysV (``msg*``) through ctypes.

A message's body is its payload, except the end-of-stream marker (the 16
bytes ``\\x00IPCCHAN-EOS\\x00\\x00\\x00\\x01``, sent by close(): at priority 0
on a POSIX queue, with the sender's type on a SysV queue) and escaped values
(a payload that begins like the marker travels behind a 16-byte escape). A
receiver ends after one marker per sender. A queue whose messages hold fewer
than 16 bytes carries no markers and no escapes.

POSIX queues: the tag is the priority (0 to 32767); the descriptor is polled,
so waits are exact. SysV queues: the tag is the message type (> 0; a
Sender's default is 1); a SysV queue has no descriptor, so a wait polls with
IPC_NOWAIT, backing off from 0.5 ms to 20 ms.
"""

import ctypes
import ctypes.util
import errno
import os
import select
import time
from typing import Any, Optional, Tuple

from ._codecs import BYTES, Codec
from ._core import DEFAULT_MAX_MESSAGE, Deadline, PeerWatch, Receiver, Sender, wait_fd
from ._errors import CorruptError, MessageTooLarge, PeerGoneError, ReservedTagError

__all__ = ["MARKER", "create_mq", "unlink_mq", "open_mq_sender", "open_mq_receiver", "mq_sender",
           "mq_receiver", "sysv_create", "sysv_remove", "sysv_sender", "sysv_receiver",
           "MsgTypeError", "MQ_PRIO_MAX"]

MARKER = b"\x00IPCCHAN-EOS\x00\x00\x00\x01"
_PREFIX = MARKER[:15]
_ESCAPE = _PREFIX + b"\x02"
MQ_PRIO_MAX = 32768
IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID = 0o1000, 0o2000, 0o4000, 0
MSG_NOERROR, MSG_EXCEPT = 0o10000, 0o20000


class MsgTypeError(CorruptError):
    """A SysV message whose type does not fit a 32-bit tag; ``mtype`` and ``data`` carry it whole."""

    def __init__(self, mtype: int, data: bytes) -> None:
        super().__init__("ipcchan: a SysV message of type %d, which a 32-bit tag cannot hold" % mtype)
        self.mtype, self.data = mtype, data


def _lib(name: str) -> Any:
    path = ctypes.util.find_library(name)
    return ctypes.CDLL(path, use_errno=True) if path else None


_libc = ctypes.CDLL(None, use_errno=True)
_librt = _lib("rt") or _libc


class _MqAttr(ctypes.Structure):
    _fields_ = [("mq_flags", ctypes.c_long), ("mq_maxmsg", ctypes.c_long), ("mq_msgsize", ctypes.c_long),
                ("mq_curmsgs", ctypes.c_long), ("_pad", ctypes.c_long * 4)]


def _check(ret: int, what: str) -> int:
    if ret == -1:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))
    return ret


_librt.mq_open.restype = ctypes.c_int
_librt.mq_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]
_librt.mq_receive.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint)]
_librt.mq_receive.restype = ctypes.c_ssize_t
_librt.mq_getattr.argtypes = [ctypes.c_int, ctypes.POINTER(_MqAttr)]
_librt.mq_setattr.argtypes = [ctypes.c_int, ctypes.POINTER(_MqAttr), ctypes.POINTER(_MqAttr)]
_librt.mq_unlink.argtypes = [ctypes.c_char_p]
_libc.msgget.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.msgsnd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.msgrcv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long, ctypes.c_int]
_libc.msgrcv.restype = ctypes.c_ssize_t
_libc.msgctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]


def mq_attr(fd: int) -> Tuple[int, int]:
    """Return (max messages, message size) of the POSIX queue descriptor fd; OSError if it is none."""
    a = _MqAttr()
    _check(_librt.mq_getattr(fd, ctypes.byref(a)), "mq_getattr")
    return a.mq_maxmsg, a.mq_msgsize


def create_mq(name: str, max_msgs: int = 10, msg_size: int = 8192, mode: int = 0o600) -> None:
    """Create the POSIX queue name ("/something"); FileExistsError if it exists."""
    a = _MqAttr(0, max_msgs, msg_size, 0)
    fd = _check(_librt.mq_open(name.encode(), ctypes.c_int(os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC),
                               ctypes.c_uint(mode), ctypes.byref(a)), "mq_open " + name)
    os.close(fd)


def unlink_mq(name: str) -> None:
    """Remove the POSIX queue name."""
    _check(_librt.mq_unlink(name.encode()), "mq_unlink " + name)


def _open_mq(name: str, flags: int) -> int:
    return _check(_librt.mq_open(name.encode(), ctypes.c_int(flags | os.O_NONBLOCK | os.O_CLOEXEC)), "mq_open " + name)


def _unescape(body: bytes, markers: bool) -> Tuple[bool, bytes]:
    """(is the marker, payload) of a body."""
    if markers and body[:15] == _PREFIX and len(body) >= 16:
        if body == MARKER:
            return True, b""
        if body[15] == 2:
            return False, body[16:]
    return False, body


def _escape(payload: bytes, size: int, raw: bool) -> bytes:
    if raw or size < 16 or payload[:15] != _PREFIX:
        return payload
    if len(payload) + 16 > size:
        raise MessageTooLarge("ipcchan: a %d-byte value that begins like the end-of-stream marker goes escaped, 16 bytes "
                              "longer, and exceeds the queue's %d-byte messages: make the messages larger" % (len(payload), size))
    return _ESCAPE + payload


class PosixQueueTransport:
    """Messages on a POSIX queue descriptor (owned)."""

    def __init__(self, fd: int, name: str, max_message: int = DEFAULT_MAX_MESSAGE, senders: int = 1,
                 raw: bool = False) -> None:
        self.fd = fd
        self.name = name
        _, self.msgsize = mq_attr(fd)
        a = _MqAttr(os.O_NONBLOCK)
        _check(_librt.mq_setattr(fd, ctypes.byref(a), None), "mq_setattr")
        self.raw = raw
        self.max_payload = min(max_message, self.msgsize)
        self.limit = max_message
        self.limit_hint = " (the queue's message size: make it larger)"
        self.senders, self.markers = senders, 0
        self._buf: Optional[Any] = None

    def fileno(self) -> int:
        return self.fd

    def __repr__(self) -> str:
        return self.name

    def check_tag(self, tag: int) -> None:
        if tag >= MQ_PRIO_MAX:
            raise ReservedTagError("ipcchan: tag %d: a POSIX queue's priority is below %d" % (tag, MQ_PRIO_MAX))

    def send_msg(self, tag: int, payload: bytes, deadline: Deadline) -> None:
        if tag == 0x7FFFFFFF:
            raise ReservedTagError("ipcchan: POSIX queues have no handshake")
        body = _escape(bytes(payload), self.msgsize, self.raw)
        self._post(body, tag, deadline)

    def _post(self, body: bytes, prio: int, deadline: Deadline) -> None:
        while True:
            if _librt.mq_send(self.fd, body, len(body), prio) == 0:
                return
            e = ctypes.get_errno()
            if e == errno.EAGAIN:
                wait_fd(self.fd, select.POLLOUT, deadline, None, "send")
            elif e == errno.EMSGSIZE:
                raise MessageTooLarge("ipcchan: a %d-byte message exceeds the queue's %d-byte messages" % (len(body), self.msgsize))
            elif e != errno.EINTR:
                raise OSError(e, "mq_send %s: %s" % (self.name, os.strerror(e)))

    def close_send(self, deadline: Deadline) -> None:
        if not self.raw and self.msgsize >= 16:
            self._post(MARKER, 0, deadline)

    def recv_msg(self, deadline: Deadline, watch: Optional[PeerWatch]) -> Optional[Tuple[int, bytes]]:
        if self._buf is None:
            self._buf = ctypes.create_string_buffer(self.msgsize)
        prio = ctypes.c_uint()
        while True:
            if not self.raw and self.markers >= self.senders:
                return None
            n = _librt.mq_receive(self.fd, self._buf, self.msgsize, ctypes.byref(prio))
            if n < 0:
                e = ctypes.get_errno()
                if e == errno.EAGAIN:
                    if not wait_fd(self.fd, select.POLLIN, deadline, watch, "receive"):
                        raise PeerGoneError("ipcchan: the peer (pid %d) has exited without ending its stream" % watch.gone)  # type: ignore
                    continue
                if e == errno.EINTR:
                    continue
                raise OSError(e, "mq_receive %s: %s" % (self.name, os.strerror(e)))
            marker, payload = _unescape(self._buf.raw[:n], not self.raw and self.msgsize >= 16)
            if marker and prio.value == 0:
                self.markers += 1
                continue
            if marker:
                payload = MARKER
            if len(payload) > self.limit:
                raise MessageTooLarge("ipcchan: a %d-byte message exceeds the %d-byte limit: discarded" % (len(payload), self.limit))
            return prio.value, payload

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def mq_sender(fd: int, codec: Codec = BYTES, tag: int = 0, raw: bool = False) -> Sender:
    """Return a Sender on the POSIX queue descriptor fd (owned). raw: no marker, no escape (a foreign peer)."""
    return Sender(PosixQueueTransport(fd, "POSIX queue fd %d" % fd, raw=raw), codec, False, tag)


def mq_receiver(fd: int, codec: Codec = BYTES, senders: int = 1, max_message: int = DEFAULT_MAX_MESSAGE,
                raw: bool = False) -> Receiver:
    """Return a Receiver on the POSIX queue descriptor fd (owned); it ends after ``senders`` markers."""
    return Receiver(PosixQueueTransport(fd, "POSIX queue fd %d" % fd, max_message, senders, raw), codec, False)


def open_mq_sender(name: str, codec: Codec = BYTES, tag: int = 0, raw: bool = False) -> Sender:
    """Open the existing POSIX queue name ("/something") for sending."""
    s = mq_sender(_open_mq(name, os.O_WRONLY), codec, tag, raw)
    s._t.name = "POSIX queue " + name
    return s


def open_mq_receiver(name: str, codec: Codec = BYTES, senders: int = 1, max_message: int = DEFAULT_MAX_MESSAGE,
                     raw: bool = False) -> Receiver:
    """Open the existing POSIX queue name for receiving; it ends after ``senders`` markers."""
    r = mq_receiver(_open_mq(name, os.O_RDONLY), codec, senders, max_message, raw)
    r._t.name = "POSIX queue " + name
    return r


# ---- SysV ------------------------------------------------------------------

_LONG = ctypes.sizeof(ctypes.c_long)
_MTYPE_MAX = (1 << (8 * _LONG - 1)) - 1


def _msgmax() -> int:
    try:
        with open("/proc/sys/kernel/msgmax") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 8192


def sysv_create(key: int, mode: int = 0o600) -> int:
    """Create the SysV queue of key (IPC_PRIVATE is 0) and return its identifier."""
    return _check(_libc.msgget(ctypes.c_int(key).value, IPC_CREAT | IPC_EXCL | mode), "msgget")


def sysv_remove(qid: int) -> None:
    """Remove the SysV queue qid."""
    _check(_libc.msgctl(qid, IPC_RMID, None), "msgctl IPC_RMID")


class SysVQueueTransport:
    """Messages on a SysV queue: ``struct { long mtype; char mtext[]; }``, native layout."""

    def __init__(self, qid: int, mtype: int = 1, except_: bool = False, truncate: bool = False,
                 max_message: int = DEFAULT_MAX_MESSAGE, senders: int = 1, raw: bool = False) -> None:
        self.qid = qid
        self.name = "SysV queue %d" % qid
        self.mtype, self.except_, self.truncate = mtype, except_, truncate
        self.msgmax = _msgmax()
        self.raw = raw
        self.max_payload = min(max_message, self.msgmax)
        self.limit = max_message
        self.limit_hint = " (the system's msgmax, /proc/sys/kernel/msgmax)"
        self.senders, self.markers = senders, 0
        self._buf: Optional[Any] = None

    def fileno(self) -> int:
        return -1

    def __repr__(self) -> str:
        return self.name

    def check_tag(self, tag: int) -> None:
        if tag == 0:
            raise ReservedTagError("ipcchan: a SysV message type must be > 0")
        if tag > _MTYPE_MAX:
            raise ReservedTagError("ipcchan: message type %d does not fit this machine's long" % tag)

    def send_msg(self, tag: int, payload: bytes, deadline: Deadline) -> None:
        self._post(_escape(bytes(payload), self.msgmax, self.raw), tag, deadline)

    def _post(self, body: bytes, mtype: int, deadline: Deadline) -> None:
        buf = ctypes.create_string_buffer(_LONG + len(body))
        ctypes.c_long.from_buffer(buf).value = mtype
        ctypes.memmove(ctypes.addressof(buf) + _LONG, body, len(body))
        delay = 0.0005
        while True:
            if _libc.msgsnd(self.qid, buf, len(body), IPC_NOWAIT) == 0:
                return
            e = ctypes.get_errno()
            if e == errno.EAGAIN:
                deadline.check("send")
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
            elif e == errno.EINVAL and len(body) > self.msgmax:
                raise MessageTooLarge("ipcchan: a %d-byte message exceeds msgmax %d" % (len(body), self.msgmax))
            elif e != errno.EINTR:
                raise OSError(e, "msgsnd %s: %s" % (self.name, os.strerror(e)))

    def close_send(self, deadline: Deadline) -> None:
        if not self.raw and self.msgmax >= 16:
            self._post(MARKER, self.mtype, deadline)

    def recv_msg(self, deadline: Deadline, watch: Optional[PeerWatch]) -> Optional[Tuple[int, bytes]]:
        cap = min(self.msgmax, self.limit + 16 + 1)
        if self._buf is None:
            self._buf = ctypes.create_string_buffer(_LONG + cap)
        flags = IPC_NOWAIT | MSG_NOERROR | (MSG_EXCEPT if self.except_ else 0)
        delay = 0.0005
        while True:
            if not self.raw and self.markers >= self.senders:
                return None
            n = _libc.msgrcv(self.qid, self._buf, cap, self.mtype, flags)
            if n < 0:
                e = ctypes.get_errno()
                if e == errno.ENOMSG:
                    if watch is not None and watch.check() is not None:
                        raise PeerGoneError("ipcchan: the peer (pid %d) has exited without ending its stream" % watch.gone)
                    deadline.check("receive")
                    time.sleep(delay)
                    delay = min(delay * 2, 0.02)
                    continue
                if e == errno.EINTR:
                    continue
                raise OSError(e, "msgrcv %s: %s" % (self.name, os.strerror(e)))
            delay = 0.0005
            mtype = ctypes.c_long.from_buffer(self._buf).value
            body = self._buf.raw[_LONG:_LONG + n]
            if n >= cap and cap < self.msgmax and not self.truncate:
                raise MessageTooLarge("ipcchan: a SysV message longer than the %d-byte limit was discarded" % self.limit)
            marker, payload = _unescape(body, not self.raw and self.msgmax >= 16)
            if marker:
                self.markers += 1
                continue
            if mtype > 0xFFFFFFFF or mtype <= 0:
                raise MsgTypeError(mtype, payload)
            if len(payload) > self.limit and not self.truncate:
                raise MessageTooLarge("ipcchan: a %d-byte message exceeds the %d-byte limit: discarded" % (len(payload), self.limit))
            return mtype, payload[:self.limit]

    def close(self) -> None:
        pass


def sysv_sender(qid: int, codec: Codec = BYTES, tag: int = 1, raw: bool = False, handshake: bool = False) -> Sender:
    """Return a Sender on SysV queue qid; messages have type ``tag`` (> 0) unless send() gives one.

    close() posts the end-of-stream marker with type ``tag``.
    """
    t = SysVQueueTransport(qid, mtype=tag, raw=raw)
    t.check_tag(tag)
    return Sender(t, codec, handshake, tag)


def sysv_receiver(qid: int, codec: Codec = BYTES, mtype: int = 0, except_: bool = False, truncate: bool = False,
                  senders: int = 1, max_message: int = DEFAULT_MAX_MESSAGE, raw: bool = False,
                  handshake: bool = False) -> Receiver:
    """Return a Receiver on SysV queue qid taking what msgrcv's msgtyp ``mtype`` selects.

    0: every message in order; > 0: that type (with except_, every other);
    < 0: the lowest type up to -mtype first. truncate (MSG_NOERROR) delivers
    the first max_message bytes of a longer message instead of refusing it.
    It ends after ``senders`` markers of the types it selects.
    """
    return Receiver(SysVQueueTransport(qid, mtype, except_, truncate, max_message, senders, raw), codec, handshake)

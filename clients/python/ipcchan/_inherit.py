"""Ends handed over by a parent process: ``IPCCHAN_FILES`` (PROTOCOL.md §9).

The parent (Go's ``endpoints.Start``/``Pass``, ``proc.Start``,
``proc.Pipeline``) lists ``name=fd`` (or ``name=sysvmq:id:type:flags``)
entries; the descriptor's kind says which transport it is: a pipe or FIFO,
a socket (stream, seqpacket, datagram), a POSIX queue. Rings
(``name=M+R+W``) are not supported from Python: see the package's
documentation.
"""

import os
import re
import socket
import stat
from typing import Any, Dict, Optional, Tuple, Union

from ._codecs import BYTES, Codec
from ._core import DEFAULT_MAX_MESSAGE, Receiver, Sender
from ._queues import PosixQueueTransport, SysVQueueTransport, mq_attr
from ._sockets import PacketTransport
from ._streams import StreamTransport

__all__ = ["inherited", "inherit_sender", "inherit_receiver", "ENV_FILES", "RING_UNSUPPORTED"]

ENV_FILES = "IPCCHAN_FILES"

RING_UNSUPPORTED = (
    "the shared-memory ring is not available from Python: its protocol (PROTOCOL.md §8) needs atomic "
    "compare-and-swap on the write lock and ordered (acquire/release) loads and stores of head, tail and the "
    "record words, and the Python standard library has neither (ctypes reads and writes memory with plain, "
    "unordered accesses). Hand this program a pipe instead (for proc pools: IPCCHAN_WORKER_TRANSPORT=0, "
    "the default)")

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_SYSV = re.compile(r"^sysvmq:(\d+):(-?\d+):([et]*)$")

Entry = Union[int, Tuple[int, int, int], Tuple[str, int, int, str]]


def inherited(env: Optional[str] = None) -> Dict[str, Entry]:
    """Parse IPCCHAN_FILES (or env): name → fd, (mem, rbell, wbell) or ("sysvmq", id, type, flags).

    Raises ValueError for a malformed variable.
    """
    text = os.environ.get(ENV_FILES, "") if env is None else env
    out: Dict[str, Entry] = {}
    if not text:
        return out
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not _NAME.match(name):
            raise ValueError("ipcchan: %s: malformed entry %r" % (ENV_FILES, item))
        if name in out:
            raise ValueError("ipcchan: %s names %r twice" % (ENV_FILES, name))
        m = _SYSV.match(value)
        if m:
            out[name] = ("sysvmq", int(m.group(1)), int(m.group(2)), m.group(3))
        elif re.match(r"^\d+\+\d+\+\d+$", value):
            a, b, c = (int(x) for x in value.split("+"))
            out[name] = (a, b, c)
        elif value.isdigit() and int(value) >= 3:
            out[name] = int(value)
        else:
            raise ValueError("ipcchan: %s: malformed entry %r" % (ENV_FILES, item))
    return out


def _entry(name: str) -> Entry:
    entries = inherited()
    if name not in entries:
        raise LookupError("ipcchan: no endpoint named %r was handed to this process (%s=%r)"
                          % (name, ENV_FILES, os.environ.get(ENV_FILES, "")))
    e = entries[name]
    if isinstance(e, tuple) and e[0] != "sysvmq":
        raise NotImplementedError("ipcchan: %r is a ring: %s" % (name, RING_UNSUPPORTED))
    return e


def _transport(name: str, sending: bool, max_message: int, senders: int, atomic: bool) -> Tuple[Any, bool]:
    """The transport of the inherited end name, and whether it is a byte stream."""
    e = _entry(name)
    if isinstance(e, tuple):
        _, qid, typ, flags = e
        if sending:
            return SysVQueueTransport(qid, mtype=typ if typ > 0 else 1, max_message=max_message), False
        return SysVQueueTransport(qid, typ, "e" in flags, "t" in flags, max_message, senders), False
    fd = e
    os.set_inheritable(fd, False)
    st = os.fstat(fd)
    if stat.S_ISFIFO(st.st_mode):
        return StreamTransport(fd, "%s (pipe fd %d)" % (name, fd), max_message, atomic and sending), True
    if stat.S_ISSOCK(st.st_mode):
        sock = socket.socket(fileno=fd)
        if sock.type == socket.SOCK_STREAM:
            sock.detach()
            return StreamTransport(fd, "%s (socket fd %d)" % (name, fd), max_message), True
        t = PacketTransport(sock, "%s (socket fd %d)" % (name, fd), max_message, senders)
        if not sending and sock.type == socket.SOCK_DGRAM and _abstract(sock):
            # As datagram_receiver on an abstract name: only this user's datagrams.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            t.check_uid = os.getuid()
        return t, False
    try:
        mq_attr(fd)
    except OSError:
        if stat.S_ISREG(st.st_mode):
            raise NotImplementedError("ipcchan: %r is shared memory: %s" % (name, RING_UNSUPPORTED)) from None
        raise ValueError("ipcchan: %r (fd %d) is no endpoint this package speaks" % (name, fd)) from None
    return PosixQueueTransport(fd, "%s (POSIX queue fd %d)" % (name, fd), max_message, senders), False


def _abstract(sock: socket.socket) -> bool:
    """Whether sock is a Unix socket bound to an abstract name (which has no permission)."""
    try:
        addr = sock.getsockname()
    except OSError:
        return False
    return isinstance(addr, bytes) and addr[:1] == b"\0" or isinstance(addr, str) and addr[:1] == "\0"


def inherit_sender(name: str, codec: Codec = BYTES, handshake: Optional[bool] = None, tag: Optional[int] = None,
                   atomic: bool = False) -> Sender:
    """Return a Sender on the end the parent handed over as name.

    handshake defaults to the Go side's default: on for pipes, FIFOs and
    stream sockets, off for message transports. tag defaults to 0 (1 on a
    SysV queue: the entry's type). Raises LookupError for an unknown name,
    NotImplementedError for a ring.
    """
    t, stream = _transport(name, True, DEFAULT_MAX_MESSAGE, 1, atomic)
    if tag is None:
        tag = t.mtype if isinstance(t, SysVQueueTransport) else 0
    return Sender(t, codec, stream if handshake is None else handshake, tag)


def inherit_receiver(name: str, codec: Codec = BYTES, handshake: Optional[bool] = None, senders: int = 1,
                     max_message: int = DEFAULT_MAX_MESSAGE) -> Receiver:
    """Return a Receiver on the end the parent handed over as name; see :func:`inherit_sender`.

    A datagram socket bound to an abstract name drops, unread, what senders
    running as another user send, as :func:`datagram_receiver` does.
    """
    t, stream = _transport(name, False, max_message, senders, False)
    return Receiver(t, codec, stream if handshake is None else handshake)



"""A Python peer the Go tests (clients/python_test.go) drive by arguments.

    py_peer.py send|recv --transport T --addr A [--codec C] [--count N] [--limit L] ...

Transports: pipe and inherited (the end inherited as --addr; inherited
sends with the end's own tag), fifo (a path), unix and
seqpacket (a path a Go listener listens on), unixgram (a path: the receiver
binds it), posixmq (a queue name), sysvmq (a queue id).

send sends --count values made by value(i) (see below), then closes. recv
prints one line per message — "msg TAG SIZE SHA256" for bytes, "val TAG JSON"
for other codecs — then "eof", or "error CLASS: TEXT" and exits 0; the Go
test checks every line. Modes: --mode hang sends the values and then waits
to be killed without closing; --mode partial writes a frame's first half
and waits to be killed.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import struct
import sys
import time

import ipcchan as ic

PATTERN = bytes(range(256)) * 2


def payload(i: int, n: int) -> bytes:
    """Message i of n bytes: the same bytes Go's pyPayload makes."""
    reps = n // 256 + 2
    return (PATTERN * (reps // 2 + 1))[i % 256:i % 256 + n]


def size(i: int, count: int, limit: int) -> int:
    """Sizes from 0 up to the limit, the last message exactly at it (Go's pySize)."""
    if i == count - 1:
        return limit
    return (i * 97) % (limit + 1) if i % 10 else i % 3


@dataclasses.dataclass
class Sample:
    """Go's pySample: struct{ ID uint32; Temp float64; Name [8]byte; Ok bool; Pair [2]int16 }."""
    ID: ic.uint32
    Temp: ic.float64
    Name: ic.Array(ic.byte, 8)
    Ok: ic.bool_
    Pair: ic.Array(ic.int16, 2)


@dataclasses.dataclass
class Doc:
    """Go's pyDoc: struct{ Name string; Tags []string; Count int64; Blob []byte; Meta map[string]int }."""
    Name: ic.string
    Tags: ic.Slice(ic.string)
    Count: ic.int64
    Blob: ic.Slice(ic.byte)
    Meta: ic.Map(ic.string, ic.int_)


def sample(i: int) -> Sample:
    return Sample(i, i / 4, ("n%d" % i).encode().ljust(8, b"\0"), i % 2 == 0, [i % 100, -(i % 300)])


def doc(i: int) -> Doc:
    return Doc("doc %d é" % i, ["t%d" % j for j in range(i % 4)], -i * 1000003, payload(i, i % 17),
               {"k%d" % j: j * i for j in range(i % 3)})


CODECS = {
    "bytes": (ic.BYTES, lambda i, n: payload(i, n)),
    "string": (ic.STRING, lambda i, n: "s%d:" % i + "x" * max(0, n - 8)),
    "binary-sample": (ic.Binary(Sample), lambda i, n: sample(i)),
    "binary-be-sample": (ic.Binary(Sample, "big"), lambda i, n: sample(i)),
    "json-doc": (ic.JSON(Doc), lambda i, n: doc(i)),
    "binary-other": (ic.Binary(ic.Struct([("ID", ic.uint32), ("Temp", ic.float32)])), lambda i, n: {"ID": i, "Temp": 0.5}),
}


def tag_of(transport: str, i: int) -> int:
    """Message i's tag (Go's pyTag): within what each transport carries."""
    if transport == "posixmq":
        return 3  # one priority: the order is the order sent
    if transport == "sysvmq":
        return 1 + i % 3
    if transport == "inherited":
        return None  # the end's own: a SysV end's type from IPCCHAN_FILES
    return (i * 2654435761) % 0x7FFFFFFF


def to_json(v):
    if dataclasses.is_dataclass(v):
        return {k: to_json(x) for k, x in dataclasses.asdict(v).items()}
    if isinstance(v, bytes):
        return list(v)
    return v


def open_end(a, sending: bool, codec: ic.Codec):
    t = a.transport
    hs = {"on": True, "off": False}.get(a.handshake)
    if t in ("pipe", "inherited"):
        if sending:
            return ic.inherit_sender(a.addr, codec, handshake=hs)
        return ic.inherit_receiver(a.addr, codec, handshake=hs, max_message=a.limit)
    if t == "fifo":
        if sending:
            return ic.open_fifo_sender(a.addr, codec, timeout=10)
        return ic.open_fifo_receiver(a.addr, codec, max_message=a.limit)
    if t in ("unix", "seqpacket"):
        connect = ic.connect_unix if t == "unix" else ic.connect_seqpacket
        kw = {} if hs is None else {"handshake": hs}
        tx, rx = connect(a.addr, codec, codec, max_message=a.limit, timeout=10, **kw)
        (rx if sending else tx).close()
        return tx if sending else rx
    if t == "unixgram":
        if sending:
            return ic.datagram_sender(a.addr, codec, handshake=bool(hs))
        return ic.datagram_receiver(a.addr, codec, handshake=bool(hs), senders=a.senders, max_message=a.limit)
    if t == "posixmq":
        if sending:
            return ic.open_mq_sender(a.addr, codec)
        return ic.open_mq_receiver(a.addr, codec, senders=a.senders, max_message=a.limit)
    if t == "sysvmq":
        if sending:
            return ic.sysv_sender(int(a.addr), codec, tag=a.tag or 1, handshake=bool(hs))
        return ic.sysv_receiver(int(a.addr), codec, mtype=a.tag, senders=a.senders, max_message=a.limit,
                                handshake=bool(hs))
    raise SystemExit("unknown transport " + t)


def ready(a) -> None:
    """Tell the Go test this end is open (unixgram receivers bind before a sender may send)."""
    print("ready", flush=True)


def send(a) -> None:
    codec, make = CODECS[a.codec]
    tx = open_end(a, True, codec)
    ready(a)
    if a.mode == "priorities":
        for prio in (1, 9, 5, 9):
            tx.send(payload(prio, prio), tag=prio)
        tx.close()
        return
    for i in range(a.count):
        tx.send(make(i, size(i, a.count, a.limit)), tag=tag_of(a.transport, i))
    if a.mode == "partial":
        # Part of a frame: 4000 bytes announced, 1000 written, and then this
        # process is killed: the receiver must not see a clean end.
        fd = tx.fileno()
        os.set_blocking(fd, True)
        os.write(fd, struct.pack(">II", 4000, 0) + b"p" * 1000)
    if a.mode in ("hang", "partial"):
        print("hanging", flush=True)
        time.sleep(3600)
    tx.close()


def recv(a) -> None:
    codec, _ = CODECS[a.codec]
    rx = open_end(a, False, codec)
    ready(a)
    if a.watch < 0:
        a.watch = int(sys.stdin.readline())  # the Go test writes the sender's pid once it has started it
    if a.watch:
        rx.watch_peer(a.watch)
    while True:
        try:
            m = rx.recv_message(timeout=a.timeout)
        except (ic.MessageTooLarge, ic.CorruptError) as e:
            if isinstance(e, ic.TruncatedError):
                report_end(rx, a, e)
                return
            # Skipped or dropped: the next receive goes on.
            print("error %s: %s" % (type(e).__name__, e), flush=True)
            continue
        except Exception as e:  # the Go test checks the class and text
            report_end(rx, a, e)
            return
        if m is None:
            print("eof", flush=True)
            return
        if isinstance(m.value, (bytes, bytearray)):
            print("msg %d %d %s" % (m.tag, len(m.value), hashlib.sha256(m.value).hexdigest()), flush=True)
        else:
            print("val %d %s" % (m.tag, json.dumps(to_json(m.value), ensure_ascii=False)), flush=True)


def report_end(rx, a, e: Exception) -> None:
    """Print a receive's final error and what the next receive does (a refusal sticks)."""
    print("error %s: %s" % (type(e).__name__, e), flush=True)
    try:
        m = rx.recv_message(timeout=a.timeout)
        print("error-again none" if m is None else "error-again value", flush=True)
    except Exception as e2:
        print("error-again %s" % type(e2).__name__, flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["send", "recv"])
    p.add_argument("--transport", required=True)
    p.add_argument("--addr", required=True)
    p.add_argument("--codec", default="bytes")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--limit", type=int, default=ic.DEFAULT_MAX_MESSAGE)
    p.add_argument("--senders", type=int, default=1)
    p.add_argument("--tag", type=int, default=0)
    p.add_argument("--watch", type=int, default=0)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--handshake", default="")
    p.add_argument("--mode", default="normal")
    a = p.parse_args()
    (send if a.role == "send" else recv)(a)


if __name__ == "__main__":
    main()

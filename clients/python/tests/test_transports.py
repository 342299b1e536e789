"""Frames against hostile input, and every transport's round trip within one process."""

import os
import socket
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipcchan as ic  # noqa: E402


def frame(tag: int, payload: bytes) -> bytes:
    return struct.pack(">II", len(payload), tag) + payload


def raw_receiver(data: bytes, codec: ic.Codec = ic.BYTES, handshake: bool = True, **kw) -> ic.Receiver:
    """A Receiver reading data from a pipe whose writer has closed."""
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return ic.fd_receiver(r, codec, handshake, **kw)


class HostileFrames(unittest.TestCase):
    def test_four_gib_header(self) -> None:
        # Nothing is allocated for what the header announces: before the hello
        # it is a handshake refusal, after it a skipped frame.
        with raw_receiver(struct.pack(">II", 0xFFFFFFFF, 0) + b"x") as rx:
            with self.assertRaises(ic.HandshakeError):
                rx.recv(timeout=5)
            with self.assertRaises(ic.HandshakeError):  # sticky
                rx.recv(timeout=5)
        with raw_receiver(struct.pack(">II", 0xFFFFFFFF, 0) + b"x", handshake=False) as rx:
            with self.assertRaises(ic.MessageTooLarge):
                rx.recv(timeout=5)
            with self.assertRaises(ic.TruncatedError):  # the stream ends inside the skipped frame
                rx.recv(timeout=5)

    def test_oversize_frame_is_skipped(self) -> None:
        data = ic.BYTES.hello()
        with raw_receiver(frame(ic.HELLO_TAG, data) + frame(0, b"x" * 100) + frame(1, b"ok"), max_message=30) as rx:
            with self.assertRaises(ic.MessageTooLarge):
                rx.recv(timeout=5)
            self.assertEqual(rx.recv_message(timeout=5), ic.Message(1, b"ok"))
            self.assertIsNone(rx.recv_message(timeout=5))

    def test_truncated(self) -> None:
        for cut in (3, 8, 10):
            with self.subTest(cut=cut), raw_receiver(frame(0, b"hello")[:cut], handshake=False) as rx:
                with self.assertRaises(ic.TruncatedError):
                    rx.recv(timeout=5)
                with self.assertRaises(EOFError):
                    rx.recv(timeout=5)

    def test_frame_before_hello(self) -> None:
        with raw_receiver(frame(0, b"x") + frame(ic.HELLO_TAG, ic.BYTES.hello())) as rx:
            with self.assertRaises(ic.HandshakeError):
                rx.recv(timeout=5)
            with self.assertRaises(ic.HandshakeError):
                rx.recv(timeout=5)

    def test_wrong_hello(self) -> None:
        for hello in (ic.STRING.hello(), ic.hello_for("bytes", ic.string), b"IPCCHAN\x00\x00\x02" + ic.BYTES.hello()[10:],
                      b"garbage", ic.BYTES.hello()[:-1]):
            with self.subTest(hello=hello), raw_receiver(frame(ic.HELLO_TAG, hello) + frame(0, b"x")) as rx:
                with self.assertRaises(ic.HandshakeError):
                    rx.recv(timeout=5)
                with self.assertRaises(ConnectionError):
                    rx.recv(timeout=5)

    def test_long_hello_refused(self) -> None:
        with raw_receiver(frame(ic.HELLO_TAG, b"I" * (ic.MAX_HELLO + 1))) as rx:
            with self.assertRaises(ic.HandshakeError):
                rx.recv(timeout=5)

    def test_empty_stream_and_timeout(self) -> None:
        with raw_receiver(b"") as rx:
            self.assertIsNone(rx.recv_message(timeout=5))
        tx, rx = ic.pipe()
        with tx, rx:
            with self.assertRaises(TimeoutError):
                rx.recv(timeout=0.01)
            tx.send(b"after")
            self.assertEqual(rx.recv(timeout=5), b"after")

    def test_bad_payload_for_codec(self) -> None:
        c = ic.Binary(ic.uint32)
        with raw_receiver(frame(ic.HELLO_TAG, c.hello()) + frame(0, b"abc") + frame(0, b"abcd"), c) as rx:
            with self.assertRaises(ic.CorruptError):
                rx.recv(timeout=5)
            self.assertEqual(rx.recv(timeout=5), struct.unpack("<I", b"abcd")[0])


class Streams(unittest.TestCase):
    def test_pipe_round_trip(self) -> None:
        tx, rx = ic.pipe(ic.STRING)
        with rx:
            with tx:
                for i in range(50):
                    tx.send(str(i) * i, tag=i)
                with self.assertRaises(ic.ReservedTagError):
                    tx.send("x", tag=ic.HELLO_TAG)
            tx.close()  # idempotent
            self.assertEqual([(m.tag, m.value) for m in rx.messages()], [(i, str(i) * i) for i in range(50)])
        with self.assertRaises(ValueError):
            tx.send("closed")

    def test_send_timeout_never_cuts_a_frame(self) -> None:
        # A frame larger than the pipe: the first write fills the pipe, the
        # deadline passes while the rest waits; the send must finish the
        # frame rather than raise with half of it written.
        import fcntl
        import termios
        import threading
        import time

        tx, rx = ic.pipe()
        value = bytes(range(256)) * 1024  # 256 KiB: more than a pipe holds
        start = time.monotonic()
        drained = threading.Event()

        def drain() -> None:
            # Wait until the pipe is full and the send's deadline has passed.
            buf = bytearray(4)
            while True:
                fcntl.ioctl(rx.fileno(), termios.FIONREAD, buf)
                if int.from_bytes(buf, sys.byteorder) >= 4096 and time.monotonic() > start + 0.2:
                    break
                time.sleep(0.005)
            drained.set()

        t = threading.Thread(target=drain)
        t.start()
        errors = []

        def send() -> None:
            try:
                tx.send(value, timeout=0.05)
            except Exception as e:  # noqa: BLE001 - recorded for the assertion below
                errors.append(e)
            tx.close()

        s = threading.Thread(target=send)
        s.start()
        self.assertTrue(drained.wait(10))
        with rx:
            self.assertEqual(rx.recv(timeout=10), value)
            self.assertIsNone(rx.recv_message(timeout=10))
        s.join(10)
        t.join(10)
        self.assertEqual(errors, [])

    def test_first_bytes_are_the_hello(self) -> None:
        r, w = os.pipe()
        tx = ic.fd_sender(w)
        tx.send(b"v")
        tx.close()
        data = os.read(r, 1024)
        os.close(r)
        self.assertEqual(data, frame(ic.HELLO_TAG, ic.BYTES.hello()) + frame(0, b"v"))

    def test_atomic_limit(self) -> None:
        r, w = os.pipe()
        with ic.fd_sender(w, atomic=True) as tx:
            tx.send(b"x" * (ic.PIPE_BUF - 8))
            with self.assertRaises(ic.MessageTooLarge):
                tx.send(b"x" * (ic.PIPE_BUF - 7))
        os.close(r)

    def test_unix_stream_descriptor_frames(self) -> None:
        # Bit 31 marks a frame carrying descriptors (PROTOCOL.md §5): this end
        # takes none, so the value comes without them and with its own tag.
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        rx = ic.fd_receiver(b.detach(), handshake=False)
        with rx, a:
            a.sendall(frame(0x80000005, struct.pack(">I", 1) + b"hi") + frame(0x80000000, b"x") + frame(6, b"ok"))
            a.shutdown(socket.SHUT_WR)
            self.assertEqual(rx.recv_message(timeout=5), ic.Message(5, b"hi"))
            with self.assertRaises(ic.CorruptError):
                rx.recv(timeout=5)
            self.assertEqual(rx.recv_message(timeout=5), ic.Message(6, b"ok"))
            self.assertIsNone(rx.recv_message(timeout=5))
        c, d = socket.socketpair()
        tx = ic.fd_sender(c.detach())
        with tx, d, self.assertRaises(ic.ReservedTagError):
            tx.send(b"x", tag=0x80000000)

    def test_fifo(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "fifo")
            os.mkfifo(path, 0o600)
            rx = ic.open_fifo_receiver(path, ic.STRING)
            with self.assertRaises(TimeoutError):  # no writer has come yet: no end either
                rx.recv(timeout=0.05)
            tx = ic.open_fifo_sender(path, ic.STRING, timeout=5)
            with rx:
                tx.send("one")
                tx.close()
                self.assertEqual(list(rx), ["one"])


class Packets(unittest.TestCase):
    def test_seqpacket(self) -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        tx, rx = ic.socket_sender(a, ic.STRING), ic.socket_receiver(b, ic.STRING)
        with rx:
            tx.send("", tag=3)
            tx.send("x", tag=0xFFFFFFFF)  # no marker on seqpacket: any tag
            tx.close()
            self.assertEqual(list(rx.messages()), [ic.Message(3, ""), ic.Message(0xFFFFFFFF, "x")])

    def test_seqpacket_hostile(self) -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        rx = ic.socket_receiver(b, max_message=8)
        with rx:
            a.send(b"ab")          # shorter than a tag
            a.send(b"")            # an empty record is not the end
            a.send(b"\0\0\0\1" + b"x" * 100)
            a.send(b"\0\0\0\2ok")
            a.close()
            with self.assertRaises(ic.CorruptError):
                rx.recv(timeout=5)
            with self.assertRaises(ic.CorruptError):
                rx.recv(timeout=5)
            with self.assertRaises(ic.MessageTooLarge):
                rx.recv(timeout=5)
            self.assertEqual(rx.recv_message(timeout=5), ic.Message(2, b"ok"))
            self.assertIsNone(rx.recv_message(timeout=5))

    def test_datagrams_two_senders(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sock")
            rx = ic.datagram_receiver(path, ic.STRING, senders=2)
            with rx:
                t1, t2 = ic.datagram_sender(path, ic.STRING), ic.datagram_sender(path, ic.STRING)
                t1.send("a", tag=1)
                with self.assertRaises(ic.ReservedTagError):
                    t1.send("a", tag=ic.EOS_TAG)
                t1.close()
                t2.send("b", tag=2)
                t2.close()
                self.assertEqual(list(rx.messages()), [ic.Message(1, "a"), ic.Message(2, "b")])

    def test_datagram_hostile(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sock")
            rx = ic.datagram_receiver(path, max_message=4)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            with rx, s:
                s.sendto(b"\xff\xff", path)
                s.sendto(b"\xff\xff\xff\xffx", path)
                s.sendto(b"\0\0\0\0" + b"y" * 64, path)
                s.sendto(b"\0\0\0\x07four", path)
                s.sendto(b"\xff\xff\xff\xff", path)
                self.assertRaises(ic.CorruptError, rx.recv, 5)
                self.assertRaises(ic.CorruptError, rx.recv, 5)
                self.assertRaises(ic.MessageTooLarge, rx.recv, 5)
                self.assertEqual(rx.recv_message(timeout=5), ic.Message(7, b"four"))
                self.assertIsNone(rx.recv_message(timeout=5))


class ReceiverGone(unittest.TestCase):
    """A send once the receiver has gone raises BrokenPipeError, as documented, every time; close() does not raise."""

    def _check(self, tx: ic.Sender) -> None:
        for _ in range(2):  # the first send is refused, the socket is disconnected from then on
            with self.assertRaises(BrokenPipeError):
                tx.send(b"x", timeout=5)
        tx.close()  # nobody to tell: no error
        self.assertTrue(tx.closed)

    def test_datagram_receiver_gone(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "g")
            rx = ic.datagram_receiver(path)
            tx = ic.datagram_sender(path)
            rx.close()
            self._check(tx)

    def test_datagram_pair_and_seqpacket_peer_gone(self) -> None:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
            with self.subTest(kind=kind):
                a, b = socket.socketpair(socket.AF_UNIX, kind)
                tx = ic.socket_sender(a)
                b.close()
                self._check(tx)


def _as_nobody(action) -> int:
    """Run action in a child process running as uid/gid 65534; return its pid (wait for it)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            action()
            code = 0
        finally:
            os._exit(code)
    return pid


@unittest.skipUnless(os.getuid() == 0, "needs root to run a peer as another user")
class AbstractNames(unittest.TestCase):
    """An abstract name has no permission: only the same user is trusted by default, as on the Go side."""

    def test_datagrams_of_another_user_are_dropped(self) -> None:
        name = "@ipcchan-%d-pytest-dgram" % os.getpid()
        with ic.datagram_receiver(name) as rx:
            def send() -> None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                s.sendto(b"\0\0\0\1evil", "\0" + name[1:])
                s.sendto(b"\xff\xff\xff\xff", "\0" + name[1:])  # a forged end
                s.close()
            self.assertEqual(os.waitpid(_as_nobody(send), 0)[1], 0)
            with ic.datagram_sender(name) as tx:
                tx.send(b"mine", tag=2)
            self.assertEqual(rx.recv_message(timeout=5), ic.Message(2, b"mine"))
            self.assertIsNone(rx.recv_message(timeout=5))
            self.assertEqual(rx._t.refused, 2)
        with ic.datagram_receiver(name, any_user=True) as rx:
            self.assertEqual(os.waitpid(_as_nobody(lambda: ic.datagram_sender(name).close()), 0)[1], 0)
            self.assertIsNone(rx.recv_message(timeout=5))

    def test_inherited_datagram_receiver_checks_too(self) -> None:
        name = "@ipcchan-%d-pytest-inherited" % os.getpid()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("\0" + name[1:])
        old = os.environ.get(ic.ENV_FILES)
        os.environ[ic.ENV_FILES] = "in=%d" % sock.detach()
        try:
            rx = ic.inherit_receiver("in")
        finally:
            if old is None:
                del os.environ[ic.ENV_FILES]
            else:
                os.environ[ic.ENV_FILES] = old
        with rx:
            def send() -> None:
                ic.datagram_sender(name).close()  # a forged end
            self.assertEqual(os.waitpid(_as_nobody(send), 0)[1], 0)
            with ic.datagram_sender(name) as tx:
                tx.send(b"mine")
            self.assertEqual(rx.recv_message(timeout=5), ic.Message(0, b"mine"))
            self.assertIsNone(rx.recv_message(timeout=5))

    def test_listener_of_another_user_is_refused(self) -> None:
        for kind, connect in ((socket.SOCK_STREAM, ic.connect_unix), (socket.SOCK_SEQPACKET, ic.connect_seqpacket)):
            name = "@ipcchan-%d-pytest-listen-%d" % (os.getpid(), kind)
            r, w = os.pipe()

            def listen() -> None:
                with socket.socket(socket.AF_UNIX, kind) as s:
                    s.bind("\0" + name[1:])
                    s.listen(4)
                    s.settimeout(10)  # a parent that fails does not connect: give up
                    os.write(w, b"x")
                    for _ in range(2):
                        s.accept()[0].close()

            pid = _as_nobody(listen)
            os.close(w)
            self.assertEqual(os.read(r, 1), b"x")
            os.close(r)
            with self.subTest(kind=kind):
                with self.assertRaises(PermissionError):
                    connect(name, timeout=5)
                tx, rx = connect(name, timeout=5, any_user=True)
                tx.close()
                rx.close()
            self.assertEqual(os.waitpid(pid, 0)[1], 0)


class Queues(unittest.TestCase):
    def test_posix(self) -> None:
        name = "/ipcchan-%d-pytest" % os.getpid()
        try:
            ic.create_mq(name, max_msgs=8, msg_size=64)
        except OSError as e:
            self.skipTest("POSIX queues: %s" % e)
        try:
            tx, rx = ic.open_mq_sender(name), ic.open_mq_receiver(name)
            with rx:
                tx.send(b"low", tag=1)
                tx.send(b"high", tag=9)
                tx.send(ic.MARKER, tag=0)  # escaped: no value ends the stream
                with self.assertRaises(ic.MessageTooLarge):
                    tx.send(ic.MARKER + b"x" * 40)  # 16 bytes longer escaped: over 64
                with self.assertRaises(ic.ReservedTagError):
                    tx.send(b"x", tag=ic.MQ_PRIO_MAX)
                tx.close()
                self.assertEqual(list(rx.messages()), [ic.Message(9, b"high"), ic.Message(1, b"low"), ic.Message(0, ic.MARKER)])
        finally:
            ic.unlink_mq(name)

    def test_sysv(self) -> None:
        try:
            qid = ic.sysv_create(0)
        except OSError as e:
            self.skipTest("SysV queues: %s" % e)
        try:
            tx = ic.sysv_sender(qid, ic.STRING, tag=5)
            rx = ic.sysv_receiver(qid, ic.STRING, mtype=5)
            other = ic.sysv_receiver(qid, ic.STRING, mtype=6)
            tx.send("a")
            tx.send("b", tag=6)
            tx.send(ic.MARKER.decode("latin-1"))
            with self.assertRaises(ic.ReservedTagError):
                tx.send("zero", tag=0)
            tx.close()
            self.assertEqual(other.recv_message(timeout=5), ic.Message(6, "b"))
            self.assertEqual(list(rx.messages()), ["a", ic.MARKER.decode("latin-1")] and
                             [ic.Message(5, "a"), ic.Message(5, ic.MARKER.decode("latin-1"))])
            with self.assertRaises(TimeoutError):
                other.recv(timeout=0.02)
            rx.close()
            other.close()
        finally:
            ic.sysv_remove(qid)


class Inherited(unittest.TestCase):
    def test_parse(self) -> None:
        self.assertEqual(ic.inherited("jobs=3,results=4,r=5+6+7,q=sysvmq:12:-3:et"),
                         {"jobs": 3, "results": 4, "r": (5, 6, 7), "q": ("sysvmq", 12, -3, "et")})
        self.assertEqual(ic.inherited(""), {})
        for bad in ("a", "a=1", "a=3,a=4", "a b=3", "q=sysvmq:x:1:", "a=3+4"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                ic.inherited(bad)

    def test_unknown_and_ring(self) -> None:
        old = os.environ.get(ic.ENV_FILES)
        os.environ[ic.ENV_FILES] = "r=5+6+7"
        try:
            with self.assertRaises(LookupError):
                ic.inherit_receiver("nope")
            with self.assertRaises(NotImplementedError):
                ic.inherit_receiver("r")
        finally:
            if old is None:
                del os.environ[ic.ENV_FILES]
            else:
                os.environ[ic.ENV_FILES] = old


if __name__ == "__main__":
    unittest.main()


class Timeouts(unittest.TestCase):
    """Any timeout a caller may write works: 0, huge ones, infinity (for ever); NaN is refused."""

    def test_huge_and_infinite_timeouts(self) -> None:
        tx, rx = ic.pipe()
        with tx, rx:
            for t in (1e10, 2.0 ** 40, 1e300, float("inf")):
                tx.send(b"v%r" % t, timeout=t)
                # Data is there: the receive returns at once, whatever its timeout.
                self.assertEqual(rx.recv(timeout=t), b"v%r" % t)
            self.assertRaises(TimeoutError, rx.recv, 0)

    def test_nan_timeout_refused(self) -> None:
        tx, rx = ic.pipe()
        with tx, rx:
            self.assertRaises(ValueError, tx.send, b"x", timeout=float("nan"))
            self.assertRaises(ValueError, rx.recv, float("nan"))
            tx.send(b"y")
            self.assertEqual(rx.recv(timeout=5), b"y")

    def test_connect_with_infinite_timeout(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            for kind, connect in ((socket.SOCK_STREAM, ic.connect_unix), (socket.SOCK_SEQPACKET, ic.connect_seqpacket)):
                path = os.path.join(d, "s%d" % kind)
                with socket.socket(socket.AF_UNIX, kind) as ls:
                    ls.bind(path)
                    ls.listen(1)
                    for t in (float("inf"), 1e10):
                        tx, rx = connect(path, timeout=t)
                        tx.close()
                        rx.close()
                        ls.accept()[0].close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Unclosed(unittest.TestCase):
    """As Python's files: an end collected unclosed warns and is closed; one that fails to open leaks nothing."""

    def test_collected_ends_warn_and_close(self) -> None:
        import gc
        import warnings
        before = _open_fds()
        tx, rx = ic.pipe()
        rfd = rx.fileno()
        keep = os.dup(rfd)  # to see the end of stream the collected Sender sends
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del tx, rx
            gc.collect()
        self.assertEqual([str(w.message)[:16] for w in caught if issubclass(w.category, ResourceWarning)],
                         ["ipcchan: unclose"] * 2)
        try:
            self.assertEqual(_open_fds(), before + 1)
            with ic.fd_receiver(keep) as rx:  # takes keep over
                self.assertIsNone(rx.recv_message(timeout=5))
        finally:
            if _open_fds() > before:
                os.close(keep)

    def test_watch_peer_after_close(self) -> None:
        # It opened a pidfd nothing would ever close.
        tx, rx = ic.pipe()
        tx.close()
        rx.close()
        before = _open_fds()
        with self.assertRaises(ValueError):
            rx.watch_peer(os.getpid())
        self.assertEqual(_open_fds(), before)

    def test_failed_construction_closes(self) -> None:
        r, w = os.pipe()
        os.close(w)
        # A limit below the hello's length is refused: the Receiver owned r.
        self.assertRaises(ValueError, ic.fd_receiver, r, max_message=4)
        self.assertRaises(OSError, os.fstat, r)


class Threads(unittest.TestCase):
    """Several threads on one end, as the docstrings allow: every message whole, to exactly one receiver."""

    N = 6000

    def setUp(self) -> None:
        # Switch threads as often as the interpreter can, so that two threads
        # inside one end's receive or send meet (they did: duplicated, lost
        # and invented messages) instead of once in a long while.
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)

    def tearDown(self) -> None:
        sys.setswitchinterval(self.interval)

    @staticmethod
    def value(i: int) -> bytes:
        return struct.pack(">I", i) * (1 + i % 40)

    def run_threads(self, targets) -> None:
        import threading
        ts = [threading.Thread(target=t) for t in targets]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
            self.assertFalse(t.is_alive(), "a thread hung")

    def check(self, got, errors, want) -> None:
        import collections
        self.assertEqual(errors, [])
        extra = collections.Counter(got) - collections.Counter(want)
        missing = collections.Counter(want) - collections.Counter(got)
        self.assertEqual((len(got), sum(extra.values()), sum(missing.values())), (len(want), 0, 0),
                         "(messages received, ones not sent or duplicated, ones lost)")

    def test_two_receivers(self) -> None:
        tx, rx = ic.pipe()
        got, errors = [], []

        def send() -> None:
            with tx:
                for i in range(self.N):
                    tx.send(self.value(i), timeout=60)

        def recv() -> None:
            try:
                while True:
                    m = rx.recv_message(timeout=60)
                    if m is None:
                        return
                    got.append(m.value)
            except Exception as e:  # reported by check
                errors.append(repr(e))

        with rx:
            self.run_threads([send, recv, recv])
        self.check(got, errors, [self.value(i) for i in range(self.N)])

    def test_two_senders(self) -> None:
        # Values longer than the pipe holds, so that each is written in parts.
        n, big = 100, lambda i: struct.pack(">I", i) * 40000
        tx, rx = ic.pipe()
        got, errors = [], []

        def send() -> None:
            try:
                for i in range(n):
                    tx.send(big(i), timeout=60)
            except Exception as e:
                errors.append(repr(e))

        def recv() -> None:
            try:
                got.extend(rx)
            except Exception as e:
                errors.append(repr(e))

        with rx:
            import threading
            r = threading.Thread(target=recv)
            r.start()
            self.run_threads([send, send])
            tx.close()
            r.join(120)
        self.check(got, errors, [big(i) for i in range(n) for _ in range(2)])

    def test_waiting_for_another_threads_receive_times_out(self) -> None:
        import threading
        tx, rx = ic.pipe()
        with tx, rx:
            started = threading.Event()
            t = threading.Thread(target=lambda: (started.set(), self.assertRaises(TimeoutError, rx.recv, 2)))
            t.start()
            started.wait(10)
            # Whether or not the other thread's receive has the end yet, this one ends by its timeout.
            self.assertRaises(TimeoutError, rx.recv, 0.05)
            t.join(10)


class Interrupted(unittest.TestCase):
    """KeyboardInterrupt (any exception a signal handler raises) inside a send never leaves half a frame behind."""

    def test_send_interrupted_inside_a_frame(self) -> None:
        import fcntl
        import signal
        import termios
        import threading

        class Interrupt(Exception):
            pass

        def handler(signum, frame) -> None:
            raise Interrupt()

        old = signal.signal(signal.SIGUSR1, handler)
        tx, rx = ic.pipe()
        big = bytes(range(256)) * 1024  # 256 KiB: more than the pipe holds
        try:
            with tx, rx:
                main = threading.get_ident()

                def interrupt_when_full() -> None:
                    # The pipe is full once the send has written part of the frame.
                    buf = bytearray(4)
                    for _ in range(100000):
                        fcntl.ioctl(rx.fileno(), termios.FIONREAD, buf)
                        if int.from_bytes(buf, sys.byteorder) >= 4096:
                            break
                        threading.Event().wait(0.001)
                    signal.pthread_kill(main, signal.SIGUSR1)

                t = threading.Thread(target=interrupt_when_full)
                t.start()
                with self.assertRaises(Interrupt):
                    tx.send(big, timeout=30)
                t.join(30)
                got = []
                r = threading.Thread(target=lambda: got.extend(rx.recv(timeout=30) for _ in range(2)))
                r.start()
                tx.send(b"next", timeout=30)  # finishes the interrupted frame first
                r.join(60)
                self.assertEqual([len(v) for v in got], [len(big), 4])
                self.assertEqual(got, [big, b"next"])
        finally:
            signal.signal(signal.SIGUSR1, old)

    def test_send_interrupted_before_writing_sends_nothing(self) -> None:
        # An exception before any byte of the frame went: the message is not sent later.
        tx, rx = ic.pipe()
        with tx, rx:
            fill = b"x" * 70000  # fills the pipe; written in parts while the receiver reads
            import threading
            got = []
            r = threading.Thread(target=lambda: got.extend(rx.recv(timeout=30) for _ in range(2)))
            tx.send(b"first", timeout=5)
            with self.assertRaises(ic.MessageTooLarge):
                tx.send(b"y" * (ic.DEFAULT_MAX_MESSAGE + 1))
            r.start()
            tx.send(fill, timeout=30)
            r.join(60)
            self.assertEqual(got, [b"first", fill])

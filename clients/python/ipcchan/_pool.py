"""A Python program as a worker of a Go ``proc.Start`` pool, or a stage of a ``proc.Pipeline``
(PROTOCOL.md §12).

A worker inherits ``jobs`` and ``results`` (pipes; rings are not available
from Python, see :data:`ipcchan.RING_UNSUPPORTED`). Jobs and results travel
in envelopes numbering them, under the codec names ``proc-job/NAME`` and
``proc-result/NAME`` and the fingerprints of Go's envelope structs
``struct{ID uint64;Job J;}`` and ``struct{ID uint64;Value R;Err string;Ok bool;}``.
The job and result codecs are those Go's ``codec.Default`` picks: ``BYTES``
for ``[]byte``, ``STRING`` for ``string``, ``Binary(shape)`` for fixed-size
values.
"""

import os
import struct
import sys
from typing import Any, Callable, Iterator, Optional, Tuple

from ._codecs import BYTES, Codec, _zero
from ._errors import CorruptError
from ._inherit import RING_UNSUPPORTED, inherit_receiver, inherit_sender, inherited
from ._core import Receiver, Sender
from ._types import Struct, bool_, string, uint64

__all__ = ["serve", "is_worker", "JobCodec", "ResultCodec", "stage", "stage_ends", "ENV_WORKER"]

ENV_WORKER = "IPCCHAN_WORKER"
_ENV_TRANSPORT = "IPCCHAN_WORKER_TRANSPORT"


def is_worker() -> bool:
    """Whether this process was started as a worker of a Go pool (IPCCHAN_WORKER is set)."""
    return ENV_WORKER in os.environ


class JobCodec(Codec):
    """The pool's job envelope around codec ``inner``: values are ``(id, job)`` pairs."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = "proc-job/" + inner.name
        self.shape = Struct([("ID", uint64), ("Job", inner.shape)])

    def encode(self, value: Tuple[int, Any]) -> bytes:
        job_id, job = value
        return struct.pack(">Q", job_id) + self.inner.encode(job)

    def decode(self, payload: bytes) -> Tuple[int, Any]:
        if len(payload) < 8:
            raise CorruptError("ipcchan: a %d-byte job envelope" % len(payload))
        return struct.unpack(">Q", payload[:8])[0], self.inner.decode(payload[8:])


class ResultCodec(Codec):
    """The pool's result envelope around codec ``inner``: values are ``(id, value, error text, ok)``."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = "proc-result/" + inner.name
        self.shape = Struct([("ID", uint64), ("Value", inner.shape), ("Err", string), ("Ok", bool_)])

    def encode(self, value: Tuple[int, Any, str, bool]) -> bytes:
        job_id, v, err, ok = value
        e = err.encode("utf-8")
        return struct.pack(">QBI", job_id, 1 if ok else 0, len(e)) + e + self.inner.encode(v)

    def decode(self, payload: bytes) -> Tuple[int, Any, str, bool]:
        if len(payload) < 13:
            raise CorruptError("ipcchan: a %d-byte result envelope" % len(payload))
        job_id, ok, n = struct.unpack(">QBI", payload[:13])
        if n > len(payload) - 13:
            raise CorruptError("ipcchan: a %d-byte error text in a %d-byte result" % (n, len(payload)))
        err = payload[13:13 + n].decode("utf-8", "replace")
        return job_id, self.inner.decode(payload[13 + n:]), err, ok == 1


def serve(handle: Callable[[Any], Any], job: Codec = BYTES, result: Codec = BYTES,
          parent_check: float = 1.0) -> None:
    """Be a worker of the Go pool that started this process: answer every job with handle(job).

    handle's return value is the job's result; an exception it raises fails
    that job (its text is the error the Go side reports) and the worker goes
    on. When ``jobs`` ends, serve closes ``results`` (its end of stream) and
    returns; the program should then exit with status 0. If the parent dies,
    serve exits the process (checked every parent_check seconds, besides the
    pool's own parent-death SIGKILL). Raises RuntimeError outside a pool,
    NotImplementedError if the pool runs on rings, HandshakeError if job
    or result do not match the pool's types.
    """
    if not is_worker():
        raise RuntimeError("ipcchan: serve: not started as a worker of a Go pool (%s is not set)" % ENV_WORKER)
    if os.environ.get(_ENV_TRANSPORT, "0") != "0":
        raise NotImplementedError("ipcchan: serve: the pool uses rings (%s=%s): %s"
                                  % (_ENV_TRANSPORT, os.environ[_ENV_TRANSPORT], RING_UNSUPPORTED))
    parent = os.getppid()
    jobs = inherit_receiver("jobs", JobCodec(job))
    results = inherit_sender("results", ResultCodec(result))
    zero = _zero(result.shape)
    with jobs, results:
        while True:
            try:
                m = jobs.recv_message(timeout=parent_check)
            except TimeoutError:
                if os.getppid() != parent:
                    sys.exit(1)  # the pool is gone: nobody to answer
                continue
            if m is None:
                return
            job_id, value = m.value
            try:
                out = handle(value)
                results.send((job_id, out, "", True))
            except Exception as e:  # the job fails, the worker goes on
                results.send((job_id, zero, str(e) or type(e).__name__, False))


def stage_ends(in_codec: Optional[Codec] = BYTES, out_codec: Optional[Codec] = BYTES
               ) -> Tuple[Optional[Receiver], Optional[Sender]]:
    """Return this pipeline stage's (in, out) ends, None for one it was not handed (first, last stage)."""
    names = inherited()
    rx = inherit_receiver("in", in_codec or BYTES) if "in" in names else None
    tx = inherit_sender("out", out_codec or BYTES) if "out" in names else None
    return rx, tx


def stage(transform: Callable[[Any], Any], in_codec: Codec = BYTES, out_codec: Codec = BYTES,
          source: Optional[Iterator[Any]] = None) -> None:
    """Run a pipeline stage: each value read from ``in`` goes through transform to ``out``.

    transform returns the value to send, or None to send nothing. A first
    stage (no ``in``) reads source instead. At the end of ``in`` the stage
    closes ``out`` (its end of stream) and returns: exit with status 0. If
    the next stage has gone (a broken pipe) it stops and returns too, so
    that the neighbour's failure is the one Go reports.
    """
    rx, tx = stage_ends(in_codec, out_codec)
    values: Any = rx if rx is not None else (source or iter(()))
    try:
        for v in values:
            out = transform(v)
            if out is not None and tx is not None:
                tx.send(out)
    except BrokenPipeError:
        pass  # the next stage has gone: its failure is the one to report (exit 0 here)
    finally:
        if tx is not None:
            tx.close()
        if rx is not None:
            rx.close()

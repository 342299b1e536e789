"""ipcchan for Python: be a peer of Go ipcchan channels, with the standard library only.

The wire protocol is the repository's PROTOCOL.md. This package speaks:

* byte streams with frames and the handshake: anonymous pipes (:func:`pipe`,
  descriptors :func:`fd_sender`/:func:`fd_receiver`), FIFOs
  (:func:`open_fifo_sender`/:func:`open_fifo_receiver`), Unix stream sockets
  (:func:`connect_unix`);
* tagged records: Unix seqpacket sockets (:func:`connect_seqpacket`) and
  Unix datagram sockets (:func:`datagram_sender`/:func:`datagram_receiver`);
* message queues: POSIX (:func:`open_mq_sender`/:func:`open_mq_receiver`)
  and SysV (:func:`sysv_sender`/:func:`sysv_receiver`), through ctypes;
* ends a parent hands over in ``IPCCHAN_FILES`` (:func:`inherit_sender`,
  :func:`inherit_receiver`), and the worker and stage roles of Go's
  ``proc`` package (:func:`serve`, :func:`stage`).

Values go through codecs (:data:`BYTES`, :data:`STRING`, :class:`JSON`,
:func:`Binary`, :func:`CStruct`, :class:`CText`) built on declared Go type
shapes (:mod:`ipcchan._types`: ``uint32``, ``Array``, ``Struct``, dataclasses),
whose :func:`fingerprint` is Go's ``ipcchan.Fingerprint``.

Not supported: the shared-memory ring (:data:`RING_UNSUPPORTED` says why),
descriptor passing (frames carrying descriptors arrive without them, as on
a Go receiver that takes none), TCP and UDP, ``gob``.
"""

from ._codecs import (BYTES, HELLO_TAG, JSON, MAX_HELLO, STRING, Binary, CStruct, CText, Codec,
                      default_codec, hello_for, parse_hello)
from ._core import DEFAULT_MAX_MESSAGE, Message, Receiver, Sender
from ._errors import (CorruptError, HandshakeError, MessageTooLarge, PeerGoneError, ReservedTagError,
                      TruncatedError)
from ._inherit import ENV_FILES, RING_UNSUPPORTED, inherit_receiver, inherit_sender, inherited
from ._pool import JobCodec, ResultCodec, is_worker, serve, stage, stage_ends
from ._queues import (MARKER, MQ_PRIO_MAX, MsgTypeError, create_mq, mq_receiver, mq_sender,
                      open_mq_receiver, open_mq_sender, sysv_create, sysv_receiver, sysv_remove,
                      sysv_sender, unlink_mq)
from ._sockets import (EOS_TAG, connect_seqpacket, datagram_receiver, datagram_sender, socket_receiver,
                       socket_sender)
from ._streams import (PIPE_BUF, connect_unix, fd_receiver, fd_sender, open_fifo_receiver,
                       open_fifo_sender, pipe)
from ._types import (Array, Char, Kind, Map, Pointer, Shape, Slice, Struct, bool_, byte, complex64,
                     complex128, describe, fingerprint, float32, float64, int8, int16, int32, int64,
                     int_, interface, rune, shape_of, string, uint, uint8, uint16, uint32, uint64,
                     uintptr)

__version__ = "0.1.0"

__all__ = [
    "BYTES", "HELLO_TAG", "JSON", "MAX_HELLO", "STRING", "Binary", "CStruct", "CText", "Codec",
    "default_codec", "hello_for", "parse_hello",
    "DEFAULT_MAX_MESSAGE", "Message", "Receiver", "Sender",
    "CorruptError", "HandshakeError", "MessageTooLarge", "PeerGoneError", "ReservedTagError", "TruncatedError",
    "ENV_FILES", "RING_UNSUPPORTED", "inherit_receiver", "inherit_sender", "inherited",
    "JobCodec", "ResultCodec", "is_worker", "serve", "stage", "stage_ends",
    "MARKER", "MQ_PRIO_MAX", "MsgTypeError", "create_mq", "mq_receiver", "mq_sender", "open_mq_receiver",
    "open_mq_sender", "sysv_create", "sysv_receiver", "sysv_remove", "sysv_sender", "unlink_mq",
    "EOS_TAG", "connect_seqpacket", "datagram_receiver", "datagram_sender", "socket_receiver", "socket_sender",
    "PIPE_BUF", "connect_unix", "fd_receiver", "fd_sender", "open_fifo_receiver", "open_fifo_sender", "pipe",
    "Array", "Char", "Kind", "Map", "Pointer", "Shape", "Slice", "Struct", "bool_", "byte", "complex64",
    "complex128", "describe", "fingerprint", "float32", "float64", "int8", "int16", "int32", "int64", "int_",
    "interface", "rune", "shape_of", "string", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr",
]

"""The exceptions of the ipcchan package.

Each subclasses the builtin a Python program would already catch for the same
trouble, so that ``except ConnectionError`` or ``except ValueError`` keeps
working:

* :class:`HandshakeError` (``ConnectionError``): the peer's hello differs from
  ours (another element type, codec or wire version), or the peer sent a
  message before any hello. The refusal sticks: every later receive raises it
  again.
* :class:`PeerGoneError` (``ConnectionError``): a watched peer process exited
  without ending its stream (see ``Receiver.watch_peer``).
* :class:`MessageTooLarge` (``ValueError``): a message over the size limit,
  refused before sending, or skipped by a receiver before it allocated it.
* :class:`CorruptError` (``ValueError``): malformed input (a datagram shorter
  than its tag, a truncated frame, a payload the codec cannot decode).
* :class:`TruncatedError` (``CorruptError`` and ``EOFError``): a stream that
  ended inside a frame.
* :class:`ReservedTagError` (``ValueError``): a tag the protocol reserves.

Timeouts raise the builtin ``TimeoutError``; a closed end raises
``ValueError`` like a closed Python file.
"""


class HandshakeError(ConnectionError):
    """The peer's hello does not match ours, or a message came before any hello.

    Sticky: every later receive on the same receiver raises it again.
    """


class PeerGoneError(ConnectionError):
    """A watched peer process exited without sending its end of stream."""


class MessageTooLarge(ValueError):
    """A message exceeds a size limit (the receiver's, the transport's, PIPE_BUF)."""


class CorruptError(ValueError):
    """Malformed input: a bad frame, datagram or queue message, or an undecodable payload."""


class TruncatedError(CorruptError, EOFError):
    """A stream ended inside a frame (Go's io.ErrUnexpectedEOF)."""


class ReservedTagError(ValueError):
    """A tag the protocol reserves (the hello's, the datagram marker's, bit 31 on sockets)."""

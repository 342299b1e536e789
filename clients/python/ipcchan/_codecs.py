"""Codecs: how a value becomes a payload and back (PROTOCOL.md §1).

A codec has the ``name`` the handshake carries, the ``shape`` whose
fingerprint it carries, and ``encode``/``decode``. The built-in ones:

* :data:`BYTES` (``bytes``, Go ``[]byte``): ``bytes`` as they are;
* :data:`STRING` (``string``, Go ``string``): ``str`` as UTF-8;
* :func:`JSON` (``json``): the value's JSON text, as Go's ``encoding/json``
  writes and reads it for the declared shape (struct fields by their Go
  names, ``[]byte`` as base64, ``null`` for a nil slice, map or pointer);
* :func:`Binary` (``binary-le``/``binary-be``): a fixed-size value packed field
  by field with no padding, as Go's ``codec.Binary`` and ``codec.Default``;
* :func:`CStruct` (``cstruct``): the C layout of the same fields, as Go's
  ``codec.CStruct`` (natural alignment, native byte order, ``Char(n)``);
* :func:`CText` (``ctext``): a C ``char[n]`` text buffer.

Decoding raises :class:`~ipcchan.CorruptError` for a payload the codec cannot
read; encoding raises ``ValueError`` (or ``TypeError``) for a value it cannot
write.
"""

import base64
import ctypes
import json
import struct
import sys
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ._errors import CorruptError
from ._types import (Array, Char, Kind, Map, Pointer, Shape, ShapeLike, Slice, Struct,
                     fingerprint, shape_of, string, uint8)

__all__ = ["Codec", "BYTES", "STRING", "JSON", "Binary", "CStruct", "CText", "hello_for",
           "HELLO_TAG", "HELLO_MAGIC", "WIRE_VERSION", "MAX_HELLO", "parse_hello"]

HELLO_TAG = 0x7FFFFFFF
HELLO_MAGIC = b"IPCCHAN\x00"
WIRE_VERSION = 1
MAX_HELLO = 8 + 2 + 1 + 255 + 8  # 274 bytes: the longest hello's payload


class Codec:
    """A codec: ``name`` and ``shape`` (for the hello), ``encode`` and ``decode``.

    Subclass it for a codec of your own; ``size`` is the fixed payload size,
    or None when payloads vary. Codecs hold no state and are safe to share
    between threads.
    """

    name: str = ""
    shape: Shape = Slice(uint8)
    size: Optional[int] = None

    def encode(self, value: Any) -> bytes:
        """Return the payload of value."""
        raise NotImplementedError

    def decode(self, payload: bytes) -> Any:
        """Return the value of payload, or raise CorruptError."""
        raise NotImplementedError

    def hello(self) -> bytes:
        """Return the hello payload a channel of this codec and shape sends (PROTOCOL.md §3)."""
        return hello_for(self.name, self.shape)

    def __repr__(self) -> str:
        return "<ipcchan codec %s of %s>" % (self.name, self.shape.describe())


def hello_for(codec_name: str, shape: ShapeLike) -> bytes:
    """Return the hello payload for codec_name and the fingerprint of shape."""
    name = codec_name.encode("ascii")
    if len(name) > 255:
        raise ValueError("ipcchan: a codec name of %d bytes does not fit the hello" % len(name))
    return (HELLO_MAGIC + struct.pack(">HB", WIRE_VERSION, len(name)) + name
            + struct.pack(">Q", fingerprint(shape)))


def parse_hello(payload: bytes) -> Tuple[int, str, int]:
    """Return (version, codec name, fingerprint) of a hello, or raise ValueError if it is malformed."""
    if len(payload) < 11 or payload[:8] != HELLO_MAGIC:
        raise ValueError("the peer's hello is malformed (%d bytes)" % len(payload))
    version = struct.unpack(">H", payload[8:10])[0]
    n = payload[10]
    if len(payload) != 11 + n + 8:
        raise ValueError("the peer's hello is malformed (%d bytes)" % len(payload))
    return version, payload[11:11 + n].decode("ascii", "replace"), struct.unpack(">Q", payload[11 + n:])[0]


class _Bytes(Codec):
    name = "bytes"
    shape = Slice(uint8)

    def encode(self, value: Any) -> bytes:
        return bytes(value)

    def decode(self, payload: bytes) -> bytes:
        return bytes(payload)


class _String(Codec):
    name = "string"
    shape = string

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise TypeError("ipcchan: the string codec encodes str, not %s" % type(value).__name__)
        return value.encode("utf-8", "surrogateescape")

    def decode(self, payload: bytes) -> str:
        # Go strings hold any bytes: surrogateescape keeps invalid UTF-8 lossless.
        return bytes(payload).decode("utf-8", "surrogateescape")


BYTES: Codec = _Bytes()
"""The ``bytes`` codec (Go ``[]byte``, codec.Default's choice for it)."""

STRING: Codec = _String()
"""The ``string`` codec (Go ``string``)."""


# ---- JSON ------------------------------------------------------------------

_INT_RANGES = {"int8": 8, "int16": 16, "int32": 32, "int64": 64, "int": 64,
               "uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64, "uint": 64, "uintptr": 64}


class JSON(Codec):
    """The ``json`` codec for shape: the JSON text Go's encoding/json writes for the same type.

    Values are Python values of the shape: dataclass instances (or dicts) for
    structs, lists for slices and arrays, ``bytes`` for ``[]byte`` (base64 in
    the JSON, as Go writes it), dicts for maps, ``None`` for a nil pointer.
    Decoding follows Go: field names match case-insensitively, unknown
    fields are ignored, missing ones are zero, ``null`` is the zero value;
    unexported fields (a lower-case name) are neither written nor read.
    Integers out of their kind's range, NaN and infinities are refused.
    """

    name = "json"

    def __init__(self, shape: ShapeLike) -> None:
        self.shape = shape_of(shape)

    def encode(self, value: Any) -> bytes:
        return json.dumps(_to_json(self.shape, value), allow_nan=False, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")

    def decode(self, payload: bytes) -> Any:
        try:
            doc = json.loads(bytes(payload).decode("utf-8"))
            return _from_json(self.shape, doc)
        except (ValueError, TypeError, KeyError) as e:
            raise CorruptError("ipcchan: json: %s" % e) from None
        except RecursionError:
            raise CorruptError("ipcchan: json: nested too deeply") from None


def _to_json(s: Shape, v: Any) -> Any:
    if isinstance(s, Kind):
        n = s.name
        if n in _INT_RANGES:
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("ipcchan: json: %s wants an int, got %r" % (n, v))
            _check_int(n, v)
            return v
        if n in ("float32", "float64"):
            return float(v)
        if n == "bool":
            return bool(v)
        if n == "string":
            if not isinstance(v, str):
                raise TypeError("ipcchan: json: string wants a str, got %r" % (v,))
            return v
        return v  # interface: any JSON value
    if isinstance(s, Char):
        return str(v)
    if isinstance(s, Pointer):
        return None if v is None else _to_json(shape_of(s.elem), v)
    if isinstance(s, Slice):
        if v is None:
            return None
        if shape_of(s.elem) == uint8:
            return base64.b64encode(bytes(v)).decode("ascii")
        return [_to_json(shape_of(s.elem), e) for e in v]
    if isinstance(s, Array):
        e = shape_of(s.elem)
        items = list(v)
        if len(items) != s.n:
            raise ValueError("ipcchan: json: [%d] array given %d elements" % (s.n, len(items)))
        return [_to_json(e, x) for x in items]
    if isinstance(s, Map):
        if v is None:
            return None
        k = shape_of(s.key)
        return {_map_key(k, key): _to_json(shape_of(s.value), val) for key, val in v.items()}
    if isinstance(s, Struct):
        return {name: _to_json(shape_of(ft), s.get(v, name)) for name, ft in s.fields if _exported(name)}
    raise TypeError("ipcchan: json: cannot encode %r" % (s,))


def _exported(name: str) -> bool:
    """Whether Go's encoding/json sees a field: an exported one, its name starting with an upper-case letter."""
    return name[:1].isupper()


def _map_key(k: Shape, key: Any) -> str:
    if isinstance(k, Kind) and k.name in _INT_RANGES:
        _check_int(k.name, key)
        return str(int(key))
    return str(key)


def _check_int(kind: str, v: int) -> None:
    bits = _INT_RANGES[kind]
    lo, hi = (0, (1 << bits) - 1) if kind.startswith("u") else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if not lo <= v <= hi:
        raise ValueError("ipcchan: %d is out of %s's range" % (v, kind))


def _zero(s: Shape) -> Any:
    if isinstance(s, Kind):
        if s.name in _INT_RANGES:
            return 0
        return {"bool": False, "float32": 0.0, "float64": 0.0, "string": ""}.get(s.name)
    if isinstance(s, Char):
        return ""
    if isinstance(s, Array):
        e = shape_of(s.elem)
        return bytes(s.n) if e == uint8 else [_zero(e) for _ in range(s.n)]
    if isinstance(s, Slice):
        return b"" if shape_of(s.elem) == uint8 else []
    if isinstance(s, Map):
        return {}
    if isinstance(s, Struct):
        return s.make({name: _zero(shape_of(ft)) for name, ft in s.fields})
    return None


def _from_json(s: Shape, d: Any) -> Any:
    if d is None:
        return _zero(s)
    if isinstance(s, Kind):
        n = s.name
        if n in _INT_RANGES:
            if isinstance(d, bool) or not isinstance(d, int):
                raise ValueError("%r is not an integer for %s" % (d, n))
            _check_int(n, d)
            return d
        if n in ("float32", "float64"):
            if isinstance(d, bool) or not isinstance(d, (int, float)):
                raise ValueError("%r is not a number for %s" % (d, n))
            return float(d)
        if n == "bool":
            if not isinstance(d, bool):
                raise ValueError("%r is not a bool" % (d,))
            return d
        if n == "string":
            if not isinstance(d, str):
                raise ValueError("%r is not a string" % (d,))
            return d
        return d
    if isinstance(s, Char):
        if not isinstance(d, str):
            raise ValueError("%r is not a string" % (d,))
        return d
    if isinstance(s, Pointer):
        return _from_json(shape_of(s.elem), d)
    if isinstance(s, Slice):
        e = shape_of(s.elem)
        if e == uint8:
            if not isinstance(d, str):
                raise ValueError("a []byte is a base64 string, got %r" % (d,))
            return base64.b64decode(d, validate=True)
        if not isinstance(d, list):
            raise ValueError("%r is not an array" % (d,))
        return [_from_json(e, x) for x in d]
    if isinstance(s, Array):
        if not isinstance(d, list):
            raise ValueError("%r is not an array" % (d,))
        e = shape_of(s.elem)
        items = [_from_json(e, x) for x in d[:s.n]] + [_zero(e) for _ in range(s.n - len(d))]
        return bytes(items) if e == uint8 else items
    if isinstance(s, Map):
        if not isinstance(d, dict):
            raise ValueError("%r is not an object" % (d,))
        k, val = shape_of(s.key), shape_of(s.value)
        out = {}
        for key, x in d.items():
            if isinstance(k, Kind) and k.name in _INT_RANGES:
                key = int(key)
                _check_int(k.name, key)
            out[key] = _from_json(val, x)
        return out
    if isinstance(s, Struct):
        if not isinstance(d, dict):
            raise ValueError("%r is not an object" % (d,))
        lower = {key.lower(): key for key in d}
        values = {}
        for name, ft in s.fields:
            if not _exported(name):
                if name != "_":
                    values[name] = _zero(shape_of(ft))
                continue
            key = name if name in d else lower.get(name.lower())
            values[name] = _from_json(shape_of(ft), d[key]) if key is not None else _zero(shape_of(ft))
        return s.make(values)
    raise TypeError("cannot decode %r" % (s,))


# ---- fixed layouts ---------------------------------------------------------

_FORMATS = {"bool": "?", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i",
            "uint32": "I", "int64": "q", "uint64": "Q", "float32": "f", "float64": "d"}


class _Layout:
    """A fixed layout compiled to one struct format plus flatten/unflatten of values."""

    def __init__(self, shape: Shape, c: bool, order: str) -> None:
        self.c = c
        self.fmt: List[str] = []
        self.offset = 0
        self.fields: List[Tuple[str, int, int]] = []  # (designator, offset, size), as codec.CStructLayout
        self.flatten, self.unflatten = self._compile(shape, "")
        if c:
            self._pad_to(_align(shape))
        self.struct = struct.Struct(order + "".join(self.fmt))
        assert self.struct.size == self.offset

    def _pad_to(self, a: int) -> None:
        r = self.offset % a
        if r:
            self._emit("%dx" % (a - r), a - r)

    def _emit(self, f: str, n: int) -> None:
        self.fmt.append(f)
        self.offset += n

    def _compile(self, s: Shape, path: str) -> Tuple[Callable[[Any, list], None], Callable[[Iterator[Any]], Any]]:
        where = path.lstrip(".") or "the value"
        if isinstance(s, Kind):
            f = _FORMATS.get(s.name)
            if f is None:
                hint = ("use int64 for a Go int (a C long), int32 for a C int" if s.name in ("int", "uint", "uintptr")
                        else "a fixed layout has no %s" % s.name)
                if s.name == "string" and self.c:
                    hint = "declare a C char[N] string as Char(N)"
                raise TypeError("ipcchan: %s is %s, which has no fixed layout: %s" % (where, s.name, hint))
            size = s.size or 0
            if self.c:
                self._pad_to(_align(s))
            self.fields.append((where, self.offset, size))
            self._emit(f, size)
            if s.name == "bool":
                return (lambda v, out: out.append(bool(v))), (lambda it: next(it))
            if s.name in _INT_RANGES:
                name = s.name

                def flat_int(v: Any, out: list) -> None:
                    if isinstance(v, bool) or not isinstance(v, int):
                        raise TypeError("ipcchan: %s: %s wants an int, got %r" % (where, name, v))
                    _check_int(name, v)
                    out.append(v)
                return flat_int, (lambda it: next(it))
            return (lambda v, out: out.append(float(v))), (lambda it: next(it))
        if isinstance(s, Char):
            if not self.c:
                raise TypeError("ipcchan: %s is a C char[%d], which only the cstruct codec lays out" % (where, s.n))
            n = s.n
            self.fields.append((where, self.offset, n))
            self._emit("%ds" % n, n)

            def flat_char(v: Any, out: list) -> None:
                b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
                if len(b) >= n:
                    raise ValueError("ipcchan: %s: a %d-byte string does not fit char[%d] with its NUL" % (where, len(b), n))
                if b"\x00" in b:
                    raise ValueError("ipcchan: %s: the string holds a NUL at byte %d, where C would cut it" % (where, b.index(0)))
                out.append(b)
            return flat_char, (lambda it: next(it).split(b"\x00", 1)[0].decode("utf-8", "surrogateescape"))
        if isinstance(s, Array):
            e = shape_of(s.elem)
            if e == uint8:
                n = s.n
                self.fields.append((where, self.offset, n))
                self._emit("%ds" % n, n)

                def flat_bytes(v: Any, out: list) -> None:
                    b = bytes(v)
                    if len(b) > n:
                        raise ValueError("ipcchan: %s: %d bytes do not fit [%d]byte" % (where, len(b), n))
                    out.append(b)  # struct pads a shorter one with zeros
                return flat_bytes, (lambda it: next(it))
            if s.n == 0:
                return (lambda v, out: None), (lambda it: [])
            scalar = isinstance(e, Kind)
            if scalar:
                # An array of scalars is one leaf field, as codec.CStructLayout lists it.
                if self.c:
                    self._pad_to(_align(e))
                start, before = self.offset, len(self.fields)
            parts = [self._compile(e, "%s[%d]" % (path, i)) for i in range(s.n)]
            if scalar:
                del self.fields[before:]
                self.fields.append((where, start, self.offset - start))
            count = s.n

            def flat_array(v: Any, out: list) -> None:
                items = list(v)
                if len(items) != count:
                    raise ValueError("ipcchan: %s: [%d] array given %d elements" % (where, count, len(items)))
                for (fl, _), x in zip(parts, items):
                    fl(x, out)
            return flat_array, (lambda it: [un(it) for _, un in parts])
        if isinstance(s, Struct):
            if self.c:
                self._pad_to(_align(s))
            compiled: List[Tuple[str, Any, Any]] = []
            for name, ft in s.fields:
                fs = shape_of(ft)
                if name == "_":
                    sub = _Layout.__new__(_Layout)
                    sub.c, sub.fmt, sub.offset, sub.fields = self.c, [], 0, []
                    sub._compile(fs, path + "._")
                    if self.c:
                        sub._pad_to(_align(fs))
                        self._pad_to(_align(fs))
                    self._emit("%dx" % sub.offset, sub.offset)
                    continue
                fl, un = self._compile(fs, path + "." + name)
                compiled.append((name, fl, un))
            if self.c:
                self._pad_to(_align(s))

            def flat_struct(v: Any, out: list) -> None:
                for name, fl, _ in compiled:
                    try:
                        fv = s.get(v, name)
                    except (KeyError, AttributeError):
                        raise TypeError("ipcchan: %s has no field %s" % (type(v).__name__, name)) from None
                    fl(fv, out)
            return flat_struct, (lambda it: s.make({name: un(it) for name, _, un in compiled}))
        raise TypeError("ipcchan: %s is %r, which has no fixed layout (slices, maps, pointers and strings have none)" % (where, s))


class _DoubleProbe(ctypes.Structure):
    _fields_ = [("c", ctypes.c_char), ("x", ctypes.c_double)]


class _Int64Probe(ctypes.Structure):
    _fields_ = [("c", ctypes.c_char), ("x", ctypes.c_int64)]


# Where the C compiler puts an 8-byte scalar after a char: its alignment in a struct.
_C_MAX_ALIGN = min(8, max(_DoubleProbe.x.offset, _Int64Probe.x.offset))
"""The largest alignment of a scalar inside a C struct on this machine: 8, but 4 on i386 (as codec.CStruct's cMaxAlign)."""


def _align(s: Shape) -> int:
    """The C alignment codec.CStruct gives s: a scalar's size (at most the ABI's largest), an array's
    element's, a struct's largest field's."""
    if isinstance(s, Kind):
        a = max(s.size or 1, 1) if s.name not in ("complex64", "complex128") else (s.size or 2) // 2
        return min(a, _C_MAX_ALIGN)
    if isinstance(s, Char):
        return 1
    if isinstance(s, Array):
        return _align(shape_of(s.elem))
    if isinstance(s, Struct):
        a = 1
        for _, ft in s.fields:
            a = max(a, _align(shape_of(ft)))
        return a
    return 1


class _Fixed(Codec):
    def __init__(self, shape: ShapeLike, c: bool, order: str, name: str) -> None:
        self.shape = shape_of(shape)
        self.name = name
        self._layout = _Layout(self.shape, c, order)
        self.size = self._layout.struct.size
        self.format = self._layout.struct.format
        """The struct module format string of the layout."""
        self.fields = list(self._layout.fields)
        """The leaf fields as (designator, offset, size), like Go's codec.CStructLayout."""

    def encode(self, value: Any) -> bytes:
        out: list = []
        self._layout.flatten(value, out)
        return self._layout.struct.pack(*out)

    def decode(self, payload: bytes) -> Any:
        if len(payload) != self.size:
            raise CorruptError("ipcchan: %s: a %d-byte value, got %d bytes" % (self.name, self.size, len(payload)))
        return self._layout.unflatten(iter(self._layout.struct.unpack(payload)))


def Binary(shape: ShapeLike, order: str = "little") -> Codec:
    """Return the ``binary-le`` (order "little") or ``binary-be`` ("big") codec of a fixed-size shape.

    The layout is Go's codec.Binary (what codec.Default picks for fixed-size
    types): fields in order with no padding, bool as one byte, ``[N]byte`` as
    ``bytes``. It raises TypeError for a shape without a fixed size (int,
    string, slices, maps, pointers). ``.format`` is the struct module format,
    ``.size`` the payload size.
    """
    if order not in ("little", "big"):
        raise ValueError("ipcchan: byte order %r: want 'little' or 'big'" % order)
    return _Fixed(shape, False, "<" if order == "little" else ">", "binary-le" if order == "little" else "binary-be")


def CStruct(shape: ShapeLike) -> Codec:
    """Return the ``cstruct`` codec of shape: Go's codec.CStruct layout on this machine.

    Fields at their natural alignment (a scalar's size, an array's element's,
    a struct's largest field's) with the padding C puts between them and at
    the end, native byte order, ``Char(n)`` as a NUL-padded ``char[n]``.
    ``.fields`` lists (designator, offset, size) as codec.CStructLayout does.
    """
    return _Fixed(shape, True, "<" if sys.byteorder == "little" else ">", "cstruct")


class CText(Codec):
    """The ``ctext`` codec: a str carried as a C ``char[size]``, NUL-padded (Go's codec.CText)."""

    name = "ctext"
    shape = string

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("ipcchan: CText(%d): a buffer needs at least one byte" % size)
        self.size = size

    def encode(self, value: Any) -> bytes:
        b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if len(b) >= self.size:
            raise ValueError("ipcchan: a %d-byte string does not fit char[%d] with its NUL" % (len(b), self.size))
        if b"\x00" in b:
            raise ValueError("ipcchan: the string holds a NUL, where C would cut it")
        return b + bytes(self.size - len(b))

    def decode(self, payload: bytes) -> str:
        return bytes(payload).split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def default_codec(shape: ShapeLike) -> Codec:
    """Return the codec Go's codec.Default picks for shape: bytes, string, else binary-le.

    Raises TypeError for a shape Go would send with gob (no fixed size):
    choose JSON on both ends for those.
    """
    s = shape_of(shape)
    if isinstance(s, Slice) and shape_of(s.elem) == uint8:
        return BYTES
    if s == string:
        return STRING
    try:
        return Binary(s)
    except TypeError as e:
        raise TypeError("%s; Go's codec.Default would use gob, which only Go speaks: use JSON on both ends" % e) from None



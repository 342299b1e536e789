"""Go type shapes: what a Python program declares so that its channels agree
with a Go peer's element type.

A shape is one of:

* a scalar kind, given as its name or one of this module's constants:
  ``bool_``, ``int8`` … ``int64``, ``uint8`` … ``uint64``, ``int_``, ``uint``,
  ``uintptr``, ``float32``, ``float64``, ``complex64``, ``complex128``,
  ``string``, ``interface`` (Go's ``any``);
* ``Array(elem, n)`` (Go ``[n]elem``), ``Slice(elem)`` (``[]elem``),
  ``Map(key, value)`` (``map[key]value``), ``Pointer(elem)`` (``*elem``);
* ``Char(n)``: a Go ``string`` field tagged ``c:"char[n]"`` (the ``cstruct``
  codec's C ``char[n]``; its description is ``string``);
* a struct: a :func:`dataclasses.dataclass` whose annotations are shapes, in
  Go's field order and with Go's field names (values are instances of that
  class), or ``Struct([("Name", shape), ...])`` (values are dicts). A field
  named ``_`` is Go's blank field (padding).

:func:`describe` writes PROTOCOL.md §4's description of a shape and
:func:`fingerprint` hashes it (64-bit FNV-1a): the same value that Go's
``ipcchan.Fingerprint`` computes for the same type.
"""

import dataclasses
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

__all__ = [
    "Kind", "Array", "Slice", "Map", "Pointer", "Struct", "Char", "Shape",
    "shape_of", "describe", "fingerprint", "fnv1a64",
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "int_", "uint", "uintptr", "float32", "float64", "complex64",
    "complex128", "string", "interface", "byte", "rune",
]


class Shape:
    """Base class of every declared shape."""

    def describe(self) -> str:
        """Return PROTOCOL.md §4's description of this shape."""
        return describe(self)

    def fingerprint(self) -> int:
        """Return the 64-bit FNV-1a hash of :meth:`describe`."""
        return fingerprint(self)


class Kind(Shape):
    """A scalar Go kind, such as ``uint32`` or ``string``."""

    _sizes = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
              "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8,
              "float64": 8, "complex64": 8, "complex128": 16}
    _names = set(_sizes) | {"int", "uint", "uintptr", "string", "chan", "func",
                            "interface", "unsafe.Pointer"}

    def __init__(self, name: str) -> None:
        if name not in self._names:
            raise ValueError("ipcchan: unknown Go kind %r" % name)
        self.name = name

    @property
    def size(self) -> Optional[int]:
        """The fixed size in bytes, or None for kinds without one (int, string, ...)."""
        return self._sizes.get(self.name)

    def __repr__(self) -> str:
        return "Kind(%r)" % self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Kind) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


bool_ = Kind("bool")
int8, int16, int32, int64 = Kind("int8"), Kind("int16"), Kind("int32"), Kind("int64")
uint8, uint16, uint32, uint64 = Kind("uint8"), Kind("uint16"), Kind("uint32"), Kind("uint64")
int_, uint, uintptr = Kind("int"), Kind("uint"), Kind("uintptr")
float32, float64 = Kind("float32"), Kind("float64")
complex64, complex128 = Kind("complex64"), Kind("complex128")
string, interface = Kind("string"), Kind("interface")
byte, rune = uint8, int32

ShapeLike = Union[Shape, str, type]


class Array(Shape):
    """Go ``[n]elem``. ``[n]byte`` values are Python ``bytes``; others are lists."""

    def __init__(self, elem: ShapeLike, n: int) -> None:
        if n < 0:
            raise ValueError("ipcchan: an array of %d elements" % n)
        self.elem, self.n = elem, n

    def __repr__(self) -> str:
        return "Array(%r, %d)" % (self.elem, self.n)


class Slice(Shape):
    """Go ``[]elem``. ``[]byte`` values are Python ``bytes``; others are lists."""

    def __init__(self, elem: ShapeLike) -> None:
        self.elem = elem

    def __repr__(self) -> str:
        return "Slice(%r)" % (self.elem,)


class Map(Shape):
    """Go ``map[key]value``; values are dicts."""

    def __init__(self, key: ShapeLike, value: ShapeLike) -> None:
        self.key, self.value = key, value

    def __repr__(self) -> str:
        return "Map(%r, %r)" % (self.key, self.value)


class Pointer(Shape):
    """Go ``*elem``; values are the pointed-to value or None."""

    def __init__(self, elem: ShapeLike) -> None:
        self.elem = elem

    def __repr__(self) -> str:
        return "Pointer(%r)" % (self.elem,)


class Char(Shape):
    """A Go string field tagged ``c:"char[n]"``: a C ``char[n]``, NUL-padded (cstruct only)."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("ipcchan: char[%d]: a C string needs at least one byte" % n)
        self.n = n

    def __repr__(self) -> str:
        return "Char(%d)" % self.n


class Struct(Shape):
    """A Go struct: fields as ``(name, shape)`` pairs in declaration order.

    ``cls``, if given, is the dataclass whose instances are the struct's
    values; without it values are dicts keyed by field name.
    """

    def __init__(self, fields: Sequence[Tuple[str, ShapeLike]], cls: Optional[type] = None) -> None:
        self.fields: List[Tuple[str, ShapeLike]] = list(fields)
        self.cls = cls

    def __repr__(self) -> str:
        return "Struct(%r)" % ([(n, t) for n, t in self.fields],)

    def make(self, values: Dict[str, Any]) -> Any:
        """Build a value of this struct from its named field values."""
        if self.cls is None:
            return {k: v for k, v in values.items() if k != "_"}
        kwargs = {k: v for k, v in values.items() if k != "_"}
        if any(name == "_" for name, _ in self.fields):
            kwargs["_"] = None  # a blank field's value is nothing: padding
        return self.cls(**kwargs)

    def get(self, value: Any, name: str) -> Any:
        """Return field name of value (a dataclass instance, a dict or a mapping)."""
        if isinstance(value, dict):
            return value[name]
        return getattr(value, name)


_dataclass_structs: Dict[type, Struct] = {}


def shape_of(t: ShapeLike) -> Shape:
    """Return the Shape that t declares: t itself, a kind's name, or a dataclass."""
    if isinstance(t, Shape):
        return t
    if isinstance(t, str):
        return Kind({"byte": "uint8", "rune": "int32", "any": "interface"}.get(t, t))
    if isinstance(t, type) and dataclasses.is_dataclass(t):
        s = _dataclass_structs.get(t)
        if s is None:
            s = Struct([], cls=t)
            _dataclass_structs[t] = s  # before the fields: a field may refer back to t
            module = sys.modules.get(t.__module__)
            scope = dict(vars(module)) if module else {}
            for f in dataclasses.fields(t):
                ft = f.type
                if isinstance(ft, str):
                    ft = eval(ft, scope, {t.__name__: t})  # noqa: S307 - annotations of the caller's class
                s.fields.append((f.name, ft))
        return s
    if t is bytes:
        return Slice(uint8)
    if t is str:
        return string
    if t is bool:
        return bool_
    if t is float:
        return float64
    raise TypeError("ipcchan: %r is not a shape: use a kind (ipcchan.uint32), Array, Slice, Map, "
                    "Pointer, Struct or a dataclass whose annotations are shapes" % (t,))


def describe(t: ShapeLike) -> str:
    """Return PROTOCOL.md §4's description of shape t ("struct{ID uint32;Temp float64;}")."""
    out: List[str] = []
    _describe(shape_of(t), out, set())
    return "".join(out)


def _describe(s: Shape, out: List[str], seen: set) -> None:
    if isinstance(s, Kind):
        out.append(s.name)
        return
    if isinstance(s, Char):
        out.append("string")
        return
    if id(s) in seen:
        out.append("<recursive>")
        return
    seen.add(id(s))
    if isinstance(s, Array):
        out.append("[%d]" % s.n)
        _describe(shape_of(s.elem), out, seen)
    elif isinstance(s, Slice):
        out.append("[]")
        _describe(shape_of(s.elem), out, seen)
    elif isinstance(s, Pointer):
        out.append("*")
        _describe(shape_of(s.elem), out, seen)
    elif isinstance(s, Map):
        out.append("map[")
        _describe(shape_of(s.key), out, seen)
        out.append("]")
        _describe(shape_of(s.value), out, seen)
    elif isinstance(s, Struct):
        out.append("struct{")
        for name, ft in s.fields:
            out.append(name + " ")
            _describe(shape_of(ft), out, seen)
            out.append(";")
        out.append("}")
    else:
        raise TypeError("ipcchan: cannot describe %r" % (s,))
    seen.discard(id(s))


def fnv1a64(data: bytes) -> int:
    """Return the 64-bit FNV-1a hash of data."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fingerprint(t: ShapeLike) -> int:
    """Return the fingerprint of shape t (PROTOCOL.md §4), as Go's ipcchan.Fingerprint does."""
    return fnv1a64(describe(t).encode("utf-8"))

"""Prints the description and fingerprint of a dozen shapes, and the cstruct layout of some,
for clients/python_test.go to compare with ipcchan.Fingerprint and codec.CStructLayout.

    abi MAXALIGN POINTERSIZE
    name DESCRIPTION FINGERPRINT
    layout name SIZE FIELD:OFFSET:SIZE,...
"""

import dataclasses
import struct

import ipcchan as ic
from ipcchan import _codecs


@dataclasses.dataclass
class Reading:
    ID: ic.int32
    Value: ic.float64
    Unit: ic.Char(8)


@dataclasses.dataclass
class Header:
    Kind: ic.uint8
    Len: ic.uint16
    _: ic.Array(ic.byte, 1)
    Seq: ic.uint64


@dataclasses.dataclass
class Packet:
    Hdr: Header
    Ok: ic.bool_
    Vals: ic.Array(ic.float32, 3)
    Items: ic.Array(ic.Struct([("A", ic.int16), ("B", ic.int8)]), 2)


def node() -> ic.Struct:
    n = ic.Struct([("Val", ic.int_)])
    n.fields.append(("Left", ic.Pointer(n)))
    n.fields.append(("Kids", ic.Slice(n)))
    return n


SHAPES = {
    "bytes": ic.Slice(ic.byte),
    "string": ic.string,
    "int64": ic.int64,
    "uintptr": ic.uintptr,
    "complex128": ic.complex128,
    "floats": ic.Array(ic.float32, 4),
    "map": ic.Map(ic.string, ic.Slice(ic.Pointer(ic.int16))),
    "reading": Reading,
    "header": Header,
    "packet": Packet,
    "any": ic.Map(ic.int_, ic.interface),
    "node": node(),
    "matrix": ic.Array(ic.Array(ic.uint8, 3), 2),
    "job": ic.JobCodec(ic.Binary(ic.Struct([("N", ic.int64)]))).shape,
    "result": ic.ResultCodec(ic.STRING).shape,
}

LAYOUTS = {"reading": Reading, "header": Header, "packet": Packet}

# The C ABI the layouts are for: the largest alignment of a scalar in a
# struct, and the pointer size (a 64-bit Python's differ from a 32-bit Go's).
print("abi %d %d" % (_codecs._C_MAX_ALIGN, struct.calcsize("P")))
for name, shape in SHAPES.items():
    print("%s %s %016x" % (name, ic.describe(shape), ic.fingerprint(shape)))
for name, shape in LAYOUTS.items():
    c = ic.CStruct(shape)
    print("layout %s %d %s" % (name, c.size, ",".join("%s:%d:%d" % f for f in c.fields)))

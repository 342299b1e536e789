"""Codecs: round trips and layouts against known bytes (what Go's codecs write)."""

import math
import os
import struct
import sys
import unittest
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipcchan as ic  # noqa: E402


@dataclass
class Inner:
    Lo: ic.uint8
    Hi: ic.uint64


@dataclass
class Rec:
    OK: ic.bool_
    N: ic.int16
    F: ic.float32
    Pair: ic.Array(ic.int32, 2)
    Key: ic.Array(ic.byte, 4)
    In: Inner


class FixedLayouts(unittest.TestCase):
    def test_binary_le_bytes(self) -> None:
        c = ic.Binary(Rec)
        v = Rec(True, -2, 1.5, [1, -1], b"ab\x00\x01", Inner(7, 2 ** 64 - 1))
        want = (b"\x01" + struct.pack("<h", -2) + struct.pack("<f", 1.5) + struct.pack("<ii", 1, -1)
                + b"ab\x00\x01" + b"\x07" + b"\xff" * 8)
        self.assertEqual(c.name, "binary-le")
        self.assertEqual(c.encode(v), want)
        self.assertEqual(c.size, len(want))
        self.assertEqual(c.decode(want), v)

    def test_binary_be_and_blank(self) -> None:
        s = ic.Struct([("A", ic.uint8), ("_", ic.int32), ("B", ic.Array(ic.uint16, 2))])
        c = ic.Binary(s, "big")
        self.assertEqual(c.name, "binary-be")
        self.assertEqual(c.encode({"A": 1, "B": [2, 3]}), bytes.fromhex("01 00000000 0002 0003"))
        self.assertEqual(c.decode(bytes.fromhex("01 ffffffff 0002 0003")), {"A": 1, "B": [2, 3]})

    def test_bool_nonzero_is_true(self) -> None:
        self.assertIs(ic.Binary(ic.bool_).decode(b"\x07"), True)

    def test_scalars(self) -> None:
        self.assertEqual(ic.Binary(ic.int64).encode(-1), b"\xff" * 8)
        self.assertEqual(ic.Binary(ic.Array(ic.float32, 2)).decode(struct.pack("<ff", 1, 2)), [1.0, 2.0])

    def test_refusals(self) -> None:
        for bad in (ic.int_, ic.string, ic.Slice(ic.uint8), ic.Struct([("S", ic.string)])):
            with self.subTest(bad=bad), self.assertRaises(TypeError):
                ic.Binary(bad)
        c = ic.Binary(ic.uint8)
        with self.assertRaises(ValueError):
            c.encode(256)
        with self.assertRaises(ic.CorruptError):
            c.decode(b"\x01\x02")

    def test_cstruct_layout(self) -> None:
        # struct { int8_t a; int64_t b; int16_t c; char s[3]; } on LP64: 0, 8, 16, 18; size 24.
        s = ic.Struct([("A", ic.int8), ("B", ic.int64), ("C", ic.int16), ("S", ic.Char(3))])
        c = ic.CStruct(s)
        self.assertEqual(c.fields, [("A", 0, 1), ("B", 8, 8), ("C", 16, 2), ("S", 18, 3)])
        self.assertEqual(c.size, 24)
        order = "<" if sys.byteorder == "little" else ">"
        b = c.encode({"A": -1, "B": 2, "C": 3, "S": "hi"})
        self.assertEqual(b, struct.pack(order + "b7xqh3s3x", -1, 2, 3, b"hi"))
        self.assertEqual(c.decode(b), {"A": -1, "B": 2, "C": 3, "S": "hi"})
        with self.assertRaises(ValueError):
            c.encode({"A": 0, "B": 0, "C": 0, "S": "abc"})  # no room for the NUL
        with self.assertRaises(ValueError):
            c.encode({"A": 0, "B": 0, "C": 0, "S": "a\x00"})

    def test_cstruct_i386_alignment(self) -> None:
        # On i386 (System V ABI) 8-byte scalars are 4-aligned inside structs,
        # as codec.CStruct lays them out there: the layout follows the
        # machine's C compiler, probed through ctypes.
        from ipcchan import _codecs
        s = ic.Struct([("ID", ic.int32), ("Value", ic.float64), ("Unit", ic.Char(8))])
        self.assertEqual(ic.CStruct(s).fields, [("ID", 0, 4), ("Value", 8 if _codecs._C_MAX_ALIGN == 8 else 4, 8),
                                                ("Unit", 16 if _codecs._C_MAX_ALIGN == 8 else 12, 8)])
        saved = _codecs._C_MAX_ALIGN
        _codecs._C_MAX_ALIGN = 4
        try:
            c = ic.CStruct(s)
            self.assertEqual((c.size, c.fields), (20, [("ID", 0, 4), ("Value", 4, 8), ("Unit", 12, 8)]))
            self.assertEqual(ic.CStruct(ic.Struct([("A", ic.uint8), ("B", ic.Array(ic.uint64, 2))])).fields,
                             [("A", 0, 1), ("B", 4, 16)])
        finally:
            _codecs._C_MAX_ALIGN = saved

    def test_cstruct_nested_and_arrays(self) -> None:
        # struct { uint8_t x; struct { uint16_t a; uint8_t b; } in[2]; } : in at 2, each 4, size 10.
        inner = ic.Struct([("A", ic.uint16), ("B", ic.uint8)])
        c = ic.CStruct(ic.Struct([("X", ic.uint8), ("In", ic.Array(inner, 2))]))
        self.assertEqual(c.size, 10)
        self.assertEqual([f[:2] for f in c.fields], [("X", 0), ("In[0].A", 2), ("In[0].B", 4), ("In[1].A", 6), ("In[1].B", 8)])


class OtherCodecs(unittest.TestCase):
    def test_bytes_string(self) -> None:
        self.assertEqual(ic.BYTES.decode(ic.BYTES.encode(b"\x00x")), b"\x00x")
        self.assertEqual(ic.STRING.encode("é"), b"\xc3\xa9")
        self.assertEqual(ic.STRING.decode(b"\xff"), "\udcff")  # any bytes, losslessly
        self.assertEqual(ic.STRING.encode(ic.STRING.decode(b"\xff")), b"\xff")

    def test_ctext(self) -> None:
        c = ic.CText(8)
        self.assertEqual(c.encode("abc"), b"abc" + bytes(5))
        self.assertEqual(c.decode(b"abc\x00zz"), "abc")
        with self.assertRaises(ValueError):
            c.encode("12345678")

    def test_json(self) -> None:
        @dataclass
        class Doc:
            Name: ic.string
            Tags: ic.Slice(ic.string)
            Blob: ic.Slice(ic.byte)
            Counts: ic.Map(ic.string, ic.int64)
            Next: ic.Pointer(ic.int32)
            Fixed: ic.Array(ic.uint8, 2)

        c = ic.JSON(Doc)
        v = Doc("n", ["a"], b"\x00\x01", {"x": 1}, None, b"\x01\x02")
        text = c.encode(v)
        self.assertEqual(text, b'{"Name":"n","Tags":["a"],"Blob":"AAE=","Counts":{"x":1},"Next":null,"Fixed":[1,2]}')
        self.assertEqual(c.decode(text), v)
        # As Go reads it: case-insensitive names, unknown fields ignored, missing ones zero.
        self.assertEqual(c.decode(b'{"name":"m","extra":1,"next":5}'), Doc("m", [], b"", {}, 5, b"\x00\x00"))
        with self.assertRaises(ic.CorruptError):
            c.decode(b'{"Name":1}')
        with self.assertRaises(ic.CorruptError):
            c.decode(b"{")
        with self.assertRaises(ic.CorruptError):  # hostile nesting: an error, not a RecursionError
            ic.JSON(ic.interface).decode(b"[" * 100000 + b"]" * 100000)
        # Unexported fields are not JSON's business, as in Go.
        hidden = ic.JSON(ic.Struct([("Shown", ic.int32), ("hidden", ic.int32)]))
        self.assertEqual(hidden.encode({"Shown": 1, "hidden": 2}), b'{"Shown":1}')
        self.assertEqual(hidden.decode(b'{"Shown":1,"hidden":2}'), {"Shown": 1, "hidden": 0})
        with self.assertRaises(ValueError):
            ic.JSON(ic.float64).encode(math.nan)
        with self.assertRaises(ValueError):
            ic.JSON(ic.uint8).encode(300)


if __name__ == "__main__":
    unittest.main()

"""PROTOCOL.md §4's fingerprint vectors, and §3's hello."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipcchan as ic  # noqa: E402


def _node() -> ic.Struct:
    node = ic.Struct([])
    node.fields.append(("Next", ic.Pointer(node)))
    return node


def _list() -> ic.Slice:
    s = ic.Slice(ic.uint8)
    s.elem = s
    return s


VECTORS = [
    (ic.Slice(ic.uint8), "[]uint8", 0x27E5D96AC8CEDF7B),
    (ic.string, "string", 0x704BE0D8FAAFFC58),
    (ic.int64, "int64", 0xF9D0C88F42834344),
    (ic.Array(ic.float32, 4), "[4]float32", 0x7217E2FEC1D42CC0),
    (ic.Map(ic.string, ic.int_), "map[string]int", 0x16AD61124846FD57),
    (ic.Struct([("ID", ic.uint32), ("Temp", ic.float64)]), "struct{ID uint32;Temp float64;}", 0x2776E745DFBDD8A4),
    (ic.Struct([("_", ic.int32), ("X", ic.uint8)]), "struct{_ int32;X uint8;}", 0xA7FD14AE4E9E3959),
    (ic.Struct([("Name", ic.string), ("Tags", ic.Slice(ic.string)), ("Meta", ic.Map(ic.string, ic.interface))]),
     "struct{Name string;Tags []string;Meta map[string]interface;}", 0x157FA2114656A4EA),
    (_node(), "struct{Next *<recursive>;}", 0x1C899A6EAE66E74C),
    (_list(), "[]<recursive>", 0x45307C88C47EE229),
]


class FingerprintVectors(unittest.TestCase):
    def test_vectors(self) -> None:
        for shape, desc, fp in VECTORS:
            with self.subTest(desc=desc):
                self.assertEqual(ic.describe(shape), desc)
                self.assertEqual(ic.fingerprint(shape), fp)

    def test_dataclass_and_names(self) -> None:
        from dataclasses import dataclass

        @dataclass
        class Reading:
            ID: ic.uint32
            Temp: ic.float64

        self.assertEqual(ic.fingerprint(Reading), 0x2776E745DFBDD8A4)
        self.assertEqual(ic.describe("byte"), "uint8")
        self.assertEqual(ic.describe(bytes), "[]uint8")
        self.assertEqual(ic.describe(ic.Char(8)), "string")

    def test_hello(self) -> None:
        want = bytes.fromhex("49 50 43 43 48 41 4E 00 00 01 05 62 79 74 65 73 27 E5 D9 6A C8 CE DF 7B")
        self.assertEqual(ic.BYTES.hello(), want)
        self.assertEqual(ic.parse_hello(want), (1, "bytes", 0x27E5D96AC8CEDF7B))
        # The Go command's output for struct{ A uint8; _ int32; B [2]uint16 } with binary-le.
        s = ic.Struct([("A", ic.uint8), ("_", ic.int32), ("B", ic.Array(ic.uint16, 2))])
        self.assertEqual(ic.Binary(s).hello().hex(), "4950434348414e000001096269" "6e6172792d6c65b8a72f26eb2de06c")
        with self.assertRaises(ValueError):
            ic.parse_hello(b"IPCCHAN\x00\x00\x01\x09bin")


if __name__ == "__main__":
    unittest.main()

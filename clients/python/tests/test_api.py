"""The public API: every exported name documented, every public callable annotated."""

import inspect
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipcchan as ic  # noqa: E402


class PublicAPI(unittest.TestCase):
    def test_documented_and_annotated(self) -> None:
        for name in ic.__all__:
            obj = getattr(ic, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            with self.subTest(name=name):
                self.assertTrue(inspect.getdoc(obj), "%s has no docstring" % name)
                members = [obj] if inspect.isfunction(obj) else [
                    m for n, m in vars(obj).items() if inspect.isfunction(m) and not n.startswith("_")]
                for f in members:
                    sig = inspect.signature(f)
                    self.assertTrue(inspect.getdoc(f), "%s.%s has no docstring" % (name, f.__name__))
                    self.assertIsNot(sig.return_annotation, inspect.Signature.empty,
                                     "%s.%s has no return annotation" % (name, f.__name__))
                    for p in sig.parameters.values():
                        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                            self.assertIsNot(p.annotation, inspect.Parameter.empty,
                                             "%s.%s: %s has no annotation" % (name, f.__name__, p.name))

    def test_version(self) -> None:
        self.assertRegex(ic.__version__, r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()

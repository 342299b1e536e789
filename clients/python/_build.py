"""A PEP 517 build backend in the standard library alone, so that
``pip install ./clients/python`` works offline, with no setuptools or wheel
package: the package is pure Python, and a wheel is a zip file.

pyproject.toml names it (``build-backend = "_build"``, ``backend-path = ["."]``).
"""

import base64
import hashlib
import io
import os
import tarfile
import zipfile
from typing import Dict, List, Optional

NAME = "ipcchan"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.abspath(__file__))
TAG = "py3-none-any"
DIST_INFO = "%s-%s.dist-info" % (NAME, VERSION)


def _metadata() -> str:
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Python peers for ipcchan channels (standard library only)\n"
            "Requires-Python: >=3.8\nClassifier: Operating System :: POSIX :: Linux\n"
            "Description-Content-Type: text/markdown\n\n%s" % (NAME, VERSION, readme))


def _wheel_file() -> str:
    return "Wheel-Version: 1.0\nGenerator: ipcchan _build\nRoot-Is-Purelib: true\nTag: %s\n" % TAG


def _package_files() -> List[str]:
    out = []
    for root, dirs, files in os.walk(os.path.join(HERE, NAME)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in sorted(files):
            if f.endswith((".py", ".typed")):
                out.append(os.path.relpath(os.path.join(root, f), HERE))
    return sorted(out)


def _write_wheel(directory: str, files: Dict[str, bytes]) -> str:
    name = "%s-%s-%s.whl" % (NAME, VERSION, TAG)
    record = []
    files = dict(files)
    files[DIST_INFO + "/METADATA"] = _metadata().encode("utf-8")
    files[DIST_INFO + "/WHEEL"] = _wheel_file().encode("ascii")
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
        record.append(DIST_INFO + "/RECORD,,")
        z.writestr(DIST_INFO + "/RECORD", "\n".join(record) + "\n")
    return name


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict] = None) -> List[str]:
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    d = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    with open(os.path.join(d, "WHEEL"), "w") as f:
        f.write(_wheel_file())
    return DIST_INFO


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    files = {}
    for path in _package_files():
        with open(os.path.join(HERE, path), "rb") as f:
            files[path.replace(os.sep, "/")] = f.read()
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory: str, config_settings: Optional[dict] = None,
                   metadata_directory: Optional[str] = None) -> str:
    # A .pth file puts this directory on the path: edits take effect at once.
    return _write_wheel(wheel_directory, {NAME + ".pth": (HERE + "\n").encode()})


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    base = "%s-%s" % (NAME, VERSION)
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for path in ["pyproject.toml", "_build.py", "README.md"] + _package_files():
            t.add(os.path.join(HERE, path), arcname=base + "/" + path)
        info = _metadata().encode("utf-8")
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(info)
        t.addfile(ti, io.BytesIO(info))
    return name

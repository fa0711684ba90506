"""A dependency-free PEP 517 / PEP 660 build backend for this pure-Python package, so that
`pip install ./python` (and `pip install -e ./python`) work offline: pip's isolated build environment needs
nothing from a package index. Metadata comes from pyproject.toml's [project] table."""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "tensorscape"
WHEEL = b"Wheel-Version: 1.0\nGenerator: tensorscape-backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        text = f.read()
    if tomllib is not None:
        return tomllib.loads(text.decode("utf-8"))["project"]
    # Minimal fallback for Python < 3.11: name, version, description, requires-python, dependencies.
    import ast

    out, section = {}, None
    for line in text.decode("utf-8").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "project" and "=" in line:
            key, value = (s.strip() for s in line.split("=", 1))
            try:
                out[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass
    return out


def _metadata():
    p = _project()
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % p["name"],
        "Version: %s" % p["version"],
        "Summary: %s" % p.get("description", ""),
    ]
    if "requires-python" in p:
        lines.append("Requires-Python: %s" % p["requires-python"])
    for dep in p.get("dependencies", []):
        lines.append("Requires-Dist: %s" % dep)
    return p, "\n".join(lines) + "\n"


def _dist_info(p):
    return "%s-%s.dist-info" % (p["name"].replace("-", "_"), p["version"])


def _wheel_name(p):
    return "%s-%s-py3-none-any.whl" % (p["name"].replace("-", "_"), p["version"])


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def _write_wheel(wheel_directory, files):
    p, metadata = _metadata()
    di = _dist_info(p)
    files = list(files) + [
        (di + "/METADATA", metadata.encode("utf-8")),
        (di + "/WHEEL", WHEEL),
        (di + "/top_level.txt", (PACKAGE + "\n").encode("utf-8")),
    ]
    record = [_record_line(name, data) for name, data in files] + [di + "/RECORD,,"]
    files.append((di + "/RECORD", ("\n".join(record) + "\n").encode("utf-8")))
    name = _wheel_name(p)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            z.writestr(arc, data)
    return name


def _package_files():
    base = os.path.join(ROOT, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                full = os.path.join(dirpath, fn)
                arc = os.path.relpath(full, ROOT).replace(os.sep, "/")
                with open(full, "rb") as f:
                    yield arc, f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    p, metadata = _metadata()
    di = os.path.join(metadata_directory, _dist_info(p))
    os.makedirs(di, exist_ok=True)
    with open(os.path.join(di, "METADATA"), "w") as f:
        f.write(metadata)
    return _dist_info(p)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (ROOT + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [("_tensorscape_editable.pth", pth)])


def build_sdist(sdist_directory, config_settings=None):
    p, metadata = _metadata()
    base = "%s-%s" % (p["name"], p["version"])
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:

        def add(arc, data):
            info = tarfile.TarInfo(base + "/" + arc)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        for arc, data in _package_files():
            add(arc, data)
        for extra in ("pyproject.toml", "_build/backend.py", "USER_GUIDE_SECTION.md"):
            with open(os.path.join(ROOT, extra), "rb") as f:
                add(extra, f.read())
        add("PKG-INFO", metadata.encode("utf-8"))
    return name

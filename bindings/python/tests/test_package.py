"""The package: its wheel, its one version, and loading the library it carries."""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile

import pytest

import sqlite_quota
from conftest import REPO_ROOT

WHEEL = os.environ.get("QUOTA_WHEEL", "")


def header_version() -> str:
    with open(os.path.join(REPO_ROOT, "ext", "quota.h"), encoding="utf-8") as f:
        return re.search(r'#define\s+SQLITE_QUOTA_VERSION\s+"([^"]+)"', f.read()).group(1)


def test_one_version_everywhere():
    conn = sqlite_quota.load(sqlite3.connect(":memory:"))
    library = conn.execute("SELECT quota_version()").fetchone()[0]
    from importlib.metadata import version
    assert (sqlite_quota.__version__, library, version("sqlite-quota")) == \
        (header_version(),) * 3


def test_loadable_path_is_inside_the_package():
    path = sqlite_quota.loadable_path()
    assert os.path.dirname(path) == os.path.dirname(os.path.abspath(sqlite_quota.__file__))
    assert os.path.basename(path) == "quota.so"
    # SQLite finds the entry point from the file name: quota -> sqlite3_quota_init.
    conn = sqlite3.connect(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(path)
    assert conn.execute("SELECT quota_version()").fetchone()[0] == sqlite_quota.__version__


def test_load_returns_the_connection_and_turns_loading_off_again():
    conn = sqlite3.connect(":memory:")
    assert sqlite_quota.load(conn) is conn
    with pytest.raises(sqlite3.OperationalError, match="not authorized"):
        conn.execute("SELECT load_extension(?)", (sqlite_quota.loadable_path(),))
    # Loading again goes through load(), which turns loading on for the load only.
    sqlite_quota.load(conn)
    assert conn.execute("SELECT quota_version()").fetchone()[0] == sqlite_quota.__version__
    with pytest.raises(sqlite3.OperationalError, match="not authorized"):
        conn.execute("SELECT load_extension(?)", (sqlite_quota.loadable_path(),))


def test_load_twice_and_the_functions_work():
    conn = sqlite_quota.load(sqlite_quota.load(sqlite3.connect(":memory:", isolation_level=None)))
    conn.execute("CREATE VIRTUAL TABLE quota USING quota")
    conn.execute("INSERT INTO quota(key, cap) VALUES ('k', 3)")
    assert conn.execute("SELECT quota_consume('k', 3)").fetchone() == (1,)


def test_load_error_when_the_module_cannot_load_extensions():
    # A connection class without enable_load_extension stands for a Python
    # built without --enable-loadable-sqlite-extensions.
    class NoLoading(sqlite3.Connection):
        enable_load_extension = None

    conn = sqlite3.connect(":memory:", factory=NoLoading)
    with pytest.raises(sqlite_quota.LoadError) as e:
        sqlite_quota.load(conn)
    msg = str(e.value)
    assert sys.executable in msg
    assert "--enable-loadable-sqlite-extensions" in msg
    assert "/usr/bin/python3" in msg


def _pythons_without_loading():
    seen = set()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        exe = os.path.join(d, "python3")
        if os.access(exe, os.X_OK) and os.path.realpath(exe) not in seen:
            seen.add(os.path.realpath(exe))
            try:
                out = subprocess.run(
                    [exe, "-c", "import sqlite3, sys; print(sys.version_info >= (3, 8) and "
                     "not hasattr(sqlite3.Connection, 'enable_load_extension'))"],
                    capture_output=True, text=True, timeout=20).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            if out == "True":
                return exe
    return None


def test_load_error_in_a_real_python_without_extension_loading():
    exe = _pythons_without_loading()
    if exe is None:
        pytest.skip("every python3 on PATH can load extensions")
    site = os.path.dirname(os.path.dirname(os.path.abspath(sqlite_quota.__file__)))
    code = ("import sys; sys.path.insert(0, %r); import sqlite3, sqlite_quota\n"
            "try:\n    sqlite_quota.load(sqlite3.connect(':memory:'))\n"
            "except sqlite_quota.LoadError as e:\n    print('LoadError:', e)\n" % site)
    out = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("LoadError: sqlite_quota.load cannot load SQLite extensions"), \
        out.stdout + out.stderr
    assert "/usr/bin/python3" in out.stdout


def test_load_refuses_what_is_not_a_sqlite3_connection():
    with pytest.raises(TypeError, match="for Django pass connection.connection"):
        sqlite_quota.load(object())


# --- the wheel ----------------------------------------------------------------

needs_wheel = pytest.mark.skipif(not WHEEL, reason="QUOTA_WHEEL (the wheel's path) is not set")


def _glibc():
    return tuple(int(x) for x in re.match(r"glibc (\d+)\.(\d+)",
                                          os.confstr("CS_GNU_LIBC_VERSION")).groups())


@needs_wheel
def test_wheel_name_and_tag():
    major, minor = _glibc()
    import platform
    tag = "py3-none-manylinux_%d_%d_%s" % (major, minor, platform.machine())
    assert os.path.basename(WHEEL) == "sqlite_quota-%s-%s.whl" % (header_version(), tag)
    with zipfile.ZipFile(WHEEL) as zf:
        wheel = zf.read("sqlite_quota-%s.dist-info/WHEEL" % header_version()).decode()
        meta = zf.read("sqlite_quota-%s.dist-info/METADATA" % header_version()).decode()
    assert "Root-Is-Purelib: false\n" in wheel
    assert "Tag: %s\n" % tag in wheel
    assert "Name: sqlite-quota\n" in meta and "Version: %s\n" % header_version() in meta


@needs_wheel
def test_wheel_record_matches_its_files():
    with zipfile.ZipFile(WHEEL) as zf:
        names = set(zf.namelist())
        record_name = [n for n in names if n.endswith(".dist-info/RECORD")][0]
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
        listed = {r[0] for r in rows}
        assert listed == names
        for name, digest, size in rows:
            if name == record_name:
                assert (digest, size) == ("", "")
                continue
            data = zf.read(name)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert (digest, int(size)) == ("sha256=" + want.decode(), len(data)), name
        assert {"sqlite_quota/quota.so", "sqlite_quota/py.typed",
                "sqlite_quota/_version.py"} <= names


@needs_wheel
def test_library_needs_no_libsqlite3_and_no_newer_glibc_than_the_tag():
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("no objdump (binutils)")
    lib = sqlite_quota.loadable_path()
    dyn = subprocess.run([objdump, "-p", lib], capture_output=True, text=True).stdout
    needed = re.findall(r"NEEDED\s+(\S+)", dyn)
    assert needed and not [n for n in needed if "sqlite" in n], needed
    syms = subprocess.run([objdump, "-T", lib], capture_output=True, text=True).stdout
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", syms)}
    assert versions and max(versions) <= _glibc()
    # The one exported symbol is the entry point.
    exported = re.findall(r"\.text\s+\S+\s+(?:Base\s+)?(\S+)$", syms, re.M)
    assert exported == ["sqlite3_quota_init"]

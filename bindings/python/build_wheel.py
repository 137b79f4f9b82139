#!/usr/bin/env python3
"""Build the wheel of the Python package sqlite-quota with the standard library only.

    python3 bindings/python/build_wheel.py LIBRARY HEADER OUTDIR

LIBRARY is the built loadable extension (quota.so, from ext/*.c by make),
HEADER is ext/quota.h (SQLITE_QUOTA_VERSION there is the package's version),
OUTDIR receives sqlite_quota-VERSION-py3-none-PLATFORM.whl and the script
prints its path.  make python runs it.

A wheel is a zip file with the package and a NAME-VERSION.dist-info
directory holding METADATA, WHEEL and RECORD (PEP 427, PEP 491, core
metadata 2.1).  Writing them by hand keeps the build offline and free of a
build backend; the package has nothing to compile but the C library, which
make has already built.  The zip is reproducible: entries are sorted, and
their times are SOURCE_DATE_EPOCH (default 1980-01-01).

The tag is py3-none-PLATFORM: any Python 3, no Python ABI (the library is
loaded by SQLite, not imported by Python), and the platform of the build.
On Linux with glibc, PLATFORM is manylinux_X_Y_ARCH with X.Y the glibc that
this machine has, the one the library was linked against: pip installs it on
any system with that glibc or a newer one.  See README.md for why the tag
does not promise an older glibc.
"""
import base64
import hashlib
import os
import platform
import re
import sys
import sysconfig
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "sqlite_quota"
DIST_NAME = "sqlite-quota"
SOURCES = ["__init__.py", "_load.py", "_quota.py", "aio.py", "py.typed"]


def read_version(header):
    with open(header, encoding="utf-8") as f:
        m = re.search(r'#define\s+SQLITE_QUOTA_VERSION\s+"([^"]+)"', f.read())
    if not m:
        sys.exit("build_wheel: no SQLITE_QUOTA_VERSION in %s" % header)
    return m.group(1)


def platform_tag():
    """The wheel platform tag of this machine (see the module's docstring)."""
    machine = platform.machine()
    if sys.platform.startswith("linux"):
        libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
        m = re.match(r"glibc (\d+)\.(\d+)", libc or "")
        if m:
            return "manylinux_%s_%s_%s" % (m.group(1), m.group(2), machine)
        return "linux_%s" % machine     # musl and others: installable here only
    return re.sub(r"[^A-Za-z0-9]", "_", sysconfig.get_platform())


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def metadata(version, readme):
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % DIST_NAME,
        "Version: %s" % version,
        "Summary: Atomic quota accounting for SQLite (the sqlite-quota extension, "
        "with a loader and a typed helper)",
        "License: MIT",
        "Requires-Python: >=3.8",
        "Keywords: sqlite,quota,rate-limit,billing,extension",
        "Classifier: License :: OSI Approved :: MIT License",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Programming Language :: C",
        "Classifier: Topic :: Database",
        "Classifier: Typing :: Typed",
        "Description-Content-Type: text/markdown",
    ]
    return ("\n".join(lines) + "\n\n" + readme).encode("utf-8")


def build(library, header, outdir):
    version = read_version(header)
    tag = "py3-none-" + platform_tag()
    dist_info = "%s-%s.dist-info" % (PACKAGE, version)
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(HERE, "..", "..", "LICENSE"), "rb") as f:
        license_text = f.read()

    files = []     # (archive name, bytes, unix mode)
    for name in SOURCES:
        with open(os.path.join(HERE, PACKAGE, name), "rb") as f:
            files.append(("%s/%s" % (PACKAGE, name), f.read(), 0o644))
    files.append(("%s/_version.py" % PACKAGE,
                  ('"""Written by build_wheel.py from SQLITE_QUOTA_VERSION in ext/quota.h."""\n'
                   '__version__ = "%s"\n' % version).encode("utf-8"), 0o644))
    with open(library, "rb") as f:
        files.append(("%s/%s" % (PACKAGE, os.path.basename(library)), f.read(), 0o755))
    files.append(("%s/METADATA" % dist_info, metadata(version, readme), 0o644))
    files.append(("%s/WHEEL" % dist_info, (
        "Wheel-Version: 1.0\n"
        "Generator: sqlite-quota build_wheel.py\n"
        "Root-Is-Purelib: false\n"
        "Tag: %s\n" % tag).encode("ascii"), 0o644))
    files.append(("%s/LICENSE" % dist_info, license_text, 0o644))
    files.append(("%s/top_level.txt" % dist_info, (PACKAGE + "\n").encode("ascii"), 0o644))
    files.sort(key=lambda f: f[0])

    record_name = "%s/RECORD" % dist_info
    record = "".join("%s,%s,%d\n" % (name, record_hash(data), len(data))
                     for name, data, _ in files)
    record += "%s,,\n" % record_name
    files.append((record_name, record.encode("utf-8"), 0o644))

    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "%s-%s-%s.whl" % (PACKAGE, version, tag))
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.replace(tmp, path)
    return path


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: build_wheel.py LIBRARY HEADER OUTDIR")
    print(build(argv[1], argv[2], argv[3]))


if __name__ == "__main__":
    main(sys.argv)

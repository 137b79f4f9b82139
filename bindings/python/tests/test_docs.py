"""The Python examples of the documentation run as they are.

Every ```python block of doc/clients.md and bindings/python/README.md is run
alone, with this interpreter (the package and the frameworks installed), in
an empty directory, and must exit 0 with nothing on stderr.  A block right
after a line "<!-- doc-test: skip REASON -->" is skipped for REASON.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

DOCS = ["doc/clients.md", "bindings/python/README.md"]
SKIP = re.compile(r"^<!-- doc-test: skip (.+?) -->$")


def python_blocks(doc):
    with open(os.path.join(REPO_ROOT, doc), encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i] == "```python":
            m = SKIP.match(lines[i - 1]) if i > 0 else None
            start, code = i + 1, []
            i += 1
            while i < len(lines) and lines[i] != "```":
                code.append(lines[i])
                i += 1
            blocks.append((doc, start, "\n".join(code) + "\n", m.group(1) if m else None))
        i += 1
    return blocks


BLOCKS = [b for doc in DOCS for b in python_blocks(doc)]


def test_every_doc_has_python_examples():
    assert sorted({b[0] for b in BLOCKS}) == sorted(DOCS)


@pytest.mark.parametrize("doc, line, code, skip", BLOCKS,
                         ids=["%s:%d" % (b[0], b[1]) for b in BLOCKS])
def test_example_runs(tmp_path, doc, line, code, skip):
    if skip:
        pytest.skip(skip)
    r = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=120)
    assert (r.returncode, r.stderr) == (0, ""), "%s:%d\n%s%s" % (doc, line, r.stdout, r.stderr)
    assert r.stdout.strip() != "" or "print(" not in code

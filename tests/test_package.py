"""Package hygiene: public names resolve; the core never needs Streamlit."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import perturb_core


def test_every_public_name_resolves() -> None:
    missing = [n for n in perturb_core.__all__ if getattr(perturb_core, n, None) is None]
    assert not missing


def test_core_imports_without_streamlit() -> None:
    code = (
        "import sys; sys.modules['streamlit'] = None\n"
        "import perturb_core as pc\n"
        "[getattr(pc, n) for n in pc.__all__]\n"
        "import perturb_core.cli; perturb_core.cli.build_parser()\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_no_streamlit_calls_in_the_core() -> None:
    root = Path(perturb_core.__file__).parent
    offenders = [
        p.name
        for p in root.rglob("*.py")
        if re.search(r"^\s*(import streamlit|from streamlit)|\bst\.[a-z_]+\(", p.read_text(), re.M)
    ]
    assert not offenders

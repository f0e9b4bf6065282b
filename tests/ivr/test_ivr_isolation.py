"""The IVR package is a pure core: it must load without the ORM or a web framework."""

from __future__ import annotations

import subprocess
import sys


def test_the_ivr_package_imports_no_orm_and_no_web_framework():
    probe = (
        "import sys, huifang.ivr.script, huifang.ivr.interpreter, huifang.ivr.codec, "
        "huifang.ivr.template, huifang.ivr.prompts\n"
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'fastapi', 'httpx') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"

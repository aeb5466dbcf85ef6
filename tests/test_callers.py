"""Every function in the shipped code has a caller: one that nothing calls is dead code, and goes.

A function counts as called when its name stands anywhere else in the repository's code, tests included (a
library's public helper may be used by tests alone). Functions a decorator registers (routes, validators,
event listeners, job handlers) are called through that registration and are not checked.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("logistics", "carriers", "webhooks", "labels", "benchmarks", "chaos")
# Where a name can stand that calls a function: code, the build's entry points and the scripts.
CODE_FILE = re.compile(r"(\.(py|toml|sh|html|ini)|^scripts/[^.]*|^\.ci/[^.]*|Dockerfile)$")
# Methods a library calls by their name, overridden here.
OVERRIDES = {
    "_execute": "aiosqlite.Connection runs every call through it",
    "process_bind_param": "SQLAlchemy TypeDecorator",
    "process_result_value": "SQLAlchemy TypeDecorator",
}


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [name for name in out.splitlines() if CODE_FILE.search(name) and (ROOT / name).is_file()]


def _defined(path: Path) -> list[str]:
    """Functions and methods of ``path`` that no decorator call registers (``@property`` and the like count)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("__"):
            if not any(isinstance(d, ast.Call) for d in node.decorator_list):
                names.append(node.name)
    return names


def test_every_function_in_the_shipped_code_has_a_caller() -> None:
    files = _tracked()
    defined: Counter[str] = Counter()
    for name in files:
        if name.endswith(".py") and name.split("/", 1)[0] in SHIPPED:
            defined.update(_defined(ROOT / name))
    words: Counter[str] = Counter()
    for name in files:
        words.update(re.findall(r"\w+", (ROOT / name).read_text(encoding="utf-8", errors="replace")))
    uncalled = sorted(n for n, count in defined.items() if words[n] <= count and n not in OVERRIDES)
    assert uncalled == []

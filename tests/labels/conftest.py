"""Make ``import labels`` mean the library, not this test folder.

pytest puts ``tests/`` on ``sys.path`` (for ``tests/conftest.py``), where ``tests/labels`` looks like a
namespace package named ``labels`` and shadows the editable install, whose finder comes after the path
finder. Putting the project root first lets the real, regular package win.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_shadow = sys.modules.get("labels")
if _shadow is not None and getattr(_shadow, "__file__", None) is None:
    for _name in [n for n in sys.modules if n == "labels" or n.startswith("labels.")]:
        del sys.modules[_name]

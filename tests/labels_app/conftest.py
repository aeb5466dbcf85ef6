"""Make ``import labels`` mean the library here too (see tests/labels/conftest.py for why it can be shadowed)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

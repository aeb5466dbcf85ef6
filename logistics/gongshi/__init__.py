"""The public 公示 figures: per department and Beijing month, computed from the stored events (figures.py,
pure), shown with small-cell suppression (suppress.py, pure), kept by the worker (store.py) and served at
/gongshi, /gongshi.json and /gongshi.csv (views.py). docs/gongshi.md states every definition."""

from logistics.gongshi.store import refresh

__all__ = ["refresh"]

"""The 公示 tests import their helpers from gongshi_support (test folders here are not packages)."""

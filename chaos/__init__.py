"""The whole-pipeline chaos run (issue 7): ``chaos/run.py`` by hand, ``tests/chaos`` in CI."""

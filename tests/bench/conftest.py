"""tests/bench holds benchmark scripts, not tests."""

collect_ignore = ["bench.py"]

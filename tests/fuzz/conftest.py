collect_ignore = ["fuzz_configs.py", "concurrency.py"]

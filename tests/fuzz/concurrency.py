"""16 workers doing create/start/state/kill/delete/list on a few shared IDs at once.

Afterwards: no traceback was ever printed, every `state`/`list` answer was valid JSON or a
clean error, duplicate creates had one winner, and nothing is left behind.

    sudo .venv/bin/python tests/fuzz/concurrency.py --seconds 60 --workers 16
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bundles.busybox import build  # noqa: E402
from tests.integration import leaks  # noqa: E402

PYRUNC = str(REPO / ".venv" / "bin" / "pyrunc")


def worker(seed: int, deadline: float, root: Path, bundle: Path, ids: list[str],
           stats: dict[str, int], problems: list[str], lock: threading.Lock) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        cid = rng.choice(ids)
        op = rng.choice(["create", "create", "start", "state", "kill", "delete", "list", "run"])
        args = {"create": ["create", "-b", str(bundle), cid], "start": ["start", cid],
                "state": ["state", cid], "kill": ["kill", cid, "KILL"],
                "delete": ["delete", "--force", cid], "list": ["list", "-f", "json"],
                "run": ["run", "-d", "-b", str(bundle), cid]}[op]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run([PYRUNC, "--root", str(root), *args], stdout=out, stderr=err,
                                  stdin=subprocess.DEVNULL, timeout=60)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        problem = None
        if "Traceback" in stderr:
            problem = f"{op}: traceback {stderr[-300:]}"
        elif proc.returncode not in (0, 1):
            problem = f"{op}: exit {proc.returncode}: {stderr}"
        elif op in ("state", "list") and proc.returncode == 0:
            try:
                json.loads(stdout)
            except ValueError:
                problem = f"{op}: not JSON: {stdout[:200]!r} {stderr[:200]!r}"
        with lock:
            stats[op] = stats.get(op, 0) + 1
            if problem:
                problems.append(problem)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--ids", type=int, default=6)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pyrunc-conc-"))
    root = work / "root"
    before = leaks.Snapshot()
    bundle = build(work / "bundle", args=["sleep", "600"])
    ids = [f"cc{i}" for i in range(opts.ids)]
    stats: dict[str, int] = {}
    problems: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + opts.seconds
    threads = [threading.Thread(target=worker, args=(i, deadline, root, bundle, ids, stats,
                                                      problems, lock))
               for i in range(opts.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cid in ids:
        subprocess.run([PYRUNC, "--root", str(root), "delete", "--force", cid],
                       capture_output=True)
    left = leaks.diff(before, [root])
    shutil.rmtree(work, ignore_errors=True)
    total = sum(stats.values())
    print(f"{opts.workers} workers, {opts.seconds:.0f} s, {total} operations {stats}")
    print(f"problems: {len(problems)}; left behind: {left or 'nothing'}")
    for p in problems[:20]:
        print("  " + p)
    return 1 if problems or left else 0


if __name__ == "__main__":
    sys.exit(main())

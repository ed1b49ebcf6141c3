"""Benchmark pyrunc against runc, side by side, on the same busybox bundle.

Not a test (timing never decides pass/fail): it prints medians and the pyrunc/runc ratio.

    .venv/bin/python tests/bench/bench.py [--runs 30] [--pyrunc PATH] [--runc PATH] [--only a,b]

As root. Each runtime gets its own --root temp dir; container ids are unique.

Each scenario alternates the two runtimes run by run, so both see the same machine state:
  run        `run` of /bin/true (default config, no terminal)
  lifecycle  create -> start -> delete (youki's published method)
  exec       `exec` of /bin/true into a running container
  state      `state` of a running container
  list       `list` with 200 containers present (created, not started)
  rss        peak RSS of the runtime during `create` (max over the process tree it waits for)
  scale      100 containers created and deleted, 8 in flight at once (total wall time)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bundles.busybox import build  # noqa: E402


class Runtime:
    """A runtime binary with a private state root."""

    def __init__(self, name: str, binary: str, root: Path) -> None:
        self.name, self.binary, self.root = name, binary, root

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def call(self, *args: str, check: bool = True) -> None:
        # stderr to a file, not a pipe: a created container keeps the caller's stdio open
        with tempfile.TemporaryFile() as err:
            done = subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err)
            if check and done.returncode != 0:
                err.seek(0)
                raise SystemExit(f"{self.name} {' '.join(args)}: {err.read().decode().strip()}")

    def timed(self, *args: str) -> float:
        start = time.perf_counter()
        self.call(*args)
        return time.perf_counter() - start


def new_id() -> str:
    return "b" + uuid.uuid4().hex[:12]


GAP = 0.0  # seconds of idle time before each sample (--gap)


def alternate(runtimes: list[Runtime], runs: int, one) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {rt.name: [] for rt in runtimes}
    for i in range(runs):
        order = runtimes if i % 2 == 0 else list(reversed(runtimes))
        for rt in order:
            if GAP:
                time.sleep(GAP)
            samples[rt.name].append(one(rt))
    return samples


def scenario_run(rt: Runtime, bundle: Path) -> float:
    return rt.timed("run", "-b", str(bundle), new_id())


def scenario_lifecycle(rt: Runtime, bundle: Path) -> float:
    cid = new_id()
    start = time.perf_counter()
    rt.call("create", "-b", str(bundle), cid)
    rt.call("start", cid)
    rt.call("delete", "--force", cid)
    return time.perf_counter() - start


def peak_rss_of_create(rt: Runtime, bundle: Path) -> float:
    """Peak RSS (KiB) of the `create` process, measured by GNU time (a fork of this Python
    process would report our own RSS: the high-water mark survives exec)."""
    cid = new_id()
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name,
                        *rt.argv("create", "-b", str(bundle), cid)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        peak = float(out.read().split()[-1])
    rt.call("delete", "--force", cid)
    return peak


def report(title: str, samples: dict[str, list[float]], unit: str = "ms",
           scale: float = 1000.0) -> None:
    med = {k: statistics.median(v) * scale for k, v in samples.items()}
    line = f"{title:<10}" + "".join(f"  {k} {v:8.2f} {unit}" for k, v in med.items())
    if "pyrunc" in med and "runc" in med and med["runc"]:
        line += f"   ratio pyrunc/runc {med['pyrunc'] / med['runc']:.2f}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    default = REPO / ".venv" / "bin" / "pyrunc"
    parser.add_argument("--pyrunc", default=str(default) if default.exists() else "pyrunc")
    parser.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--gap", type=float, default=0.0, metavar="MS",
                        help="idle milliseconds before each sample (default 0: back to back)")
    opts = parser.parse_args()
    global GAP
    GAP = opts.gap / 1000.0
    for binary in (opts.pyrunc, opts.runc):
        if not shutil.which(binary):
            raise SystemExit(f"{binary}: not found (runc: apt-get install runc; pyrunc: "
                             ".ci/setup makes .venv/bin/pyrunc)")
    work = Path(tempfile.mkdtemp(prefix="pyrunc-bench-"))
    try:
        bundle = build(work / "bundle", args=["/bin/true"])
        sleeper = build(work / "sleeper", args=["sleep", "3600"])
        runtimes = [Runtime("pyrunc", opts.pyrunc, work / "pyrunc-root"),
                    Runtime("runc", opts.runc, work / "runc-root")]
        only = set(filter(None, opts.only.split(",")))
        def want(name: str) -> bool:
            return not only or name in only

        gap = f", {opts.gap:g} ms idle before each" if opts.gap else ""
        print(f"{opts.runs} runs each, alternating{gap}; pyrunc={opts.pyrunc} runc={opts.runc}")
        for rt in runtimes:  # warm caches
            rt.call("run", "-b", str(bundle), new_id())
        if want("run"):
            report("run", alternate(runtimes, opts.runs, lambda rt: scenario_run(rt, bundle)))
        if want("lifecycle"):
            report("lifecycle", alternate(runtimes, opts.runs,
                                          lambda rt: scenario_lifecycle(rt, bundle)))
        if want("exec") or want("state"):
            ids = {}
            for rt in runtimes:
                ids[rt.name] = new_id()
                rt.call("run", "-d", "-b", str(sleeper), ids[rt.name])
            if want("exec"):
                report("exec", alternate(runtimes, opts.runs,
                                         lambda rt: rt.timed("exec", ids[rt.name], "/bin/true")))
            if want("state"):
                report("state", alternate(runtimes, opts.runs,
                                          lambda rt: rt.timed("state", ids[rt.name])))
            for rt in runtimes:
                rt.call("delete", "--force", ids[rt.name])
        if want("list"):
            created = {rt.name: [] for rt in runtimes}
            for rt in runtimes:
                for _ in range(200):
                    cid = new_id()
                    rt.call("create", "-b", str(sleeper), cid)
                    created[rt.name].append(cid)
            report("list", alternate(runtimes, max(5, opts.runs // 3),
                                     lambda rt: rt.timed("list")))
            for rt in runtimes:
                for cid in created[rt.name]:
                    rt.call("delete", "--force", cid, check=False)
        if want("rss") and not Path("/usr/bin/time").exists():
            print("rss       skipped: /usr/bin/time is missing (apt-get install time)")
        elif want("rss"):
            report("rss", alternate(runtimes, max(5, opts.runs // 3),
                                    lambda rt: peak_rss_of_create(rt, sleeper)),
                   unit="KiB", scale=1.0)
        if want("scale"):
            def scale(rt: Runtime) -> float:
                def one(_: int) -> None:
                    cid = new_id()
                    rt.call("create", "-b", str(sleeper), cid)
                    rt.call("delete", "--force", cid)
                start = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(one, range(100)))
                return time.perf_counter() - start
            report("scale", alternate(runtimes, 3, scale), unit="s", scale=1.0)
    finally:
        for rt_root in work.glob("*-root"):
            for state in (rt_root.iterdir() if rt_root.is_dir() else ()):
                for binary in (opts.pyrunc, opts.runc):
                    subprocess.run([binary, "--root", str(rt_root), "delete", "--force",
                                    state.name], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

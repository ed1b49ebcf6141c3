"""Feed pyrunc malformed and hostile configs and argument lists; check it always fails cleanly.

For every case: exit status 1 (never a traceback), one line on stderr, bounded memory, and
nothing left behind (no state dir, no cgroup, no mount, no process).

    sudo .venv/bin/python tests/fuzz/fuzz_configs.py --configs 10000 --argv 1000

tests/fuzz/test_fuzz_sample.py runs a small sample of the same generators in CI.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bundles.busybox import cached_rootfs  # noqa: E402
from ociruntime.config.defaults import default_spec  # noqa: E402
from tests.helpers import json_paths, set_at  # noqa: E402

PYRUNC = str(REPO / ".venv" / "bin" / "pyrunc")

HOSTILE_VALUES = [
    None, True, False, 0, -1, 1.5, 2**64, -(2**63) - 1, "", "\x00", "a\x00b", "../../etc",
    "/..", "relative/path", "x" * 100_000, "\udcff", [], {}, [[[[[]]]]], {"a": {"b": {"c": {}}}},
    "CAP_NOT_REAL", "RLIMIT_NOPE", "SCMP_ACT_NOPE", "/proc/self/exe", "/dev/null",
]


def mutate(rng: random.Random, base: dict) -> object:
    """One hostile variant of a valid config."""
    doc = copy.deepcopy(base)
    kind = rng.randrange(8)
    if kind == 0:  # replace a value anywhere
        path = rng.choice(json_paths(doc)[1:])
        node = doc
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = rng.choice(HOSTILE_VALUES)
    elif kind == 1:  # delete something
        path = rng.choice(json_paths(doc)[1:])
        node = doc
        for p in path[:-1]:
            node = node[p]
        del node[path[-1]]
    elif kind == 2:  # duplicate namespaces
        doc["linux"]["namespaces"].append(rng.choice(doc["linux"]["namespaces"]))
    elif kind == 3:  # deep nesting
        deep: object = "x"
        for _ in range(rng.choice([50, 500, 5000])):
            deep = [deep]
        doc["process"]["env"] = deep
    elif kind == 4:  # unknown capability / syscall names
        doc["process"]["capabilities"]["bounding"].append("CAP_" + "Z" * rng.randrange(1, 40))
        doc["linux"]["seccomp"] = {"defaultAction": rng.choice(["SCMP_ACT_ALLOW", "SCMP_ACT_X"]),
                                   "syscalls": [{"names": ["not_a_call"],
                                                 "action": "SCMP_ACT_BOGUS"}]}
    elif kind == 5:  # absurd numbers
        doc["process"]["rlimits"][0]["soft"] = rng.choice([2**64, -5, 10**30])
        doc["process"]["user"]["uid"] = rng.choice([2**32, -1, 10**20])
    elif kind == 6:  # paths trying to escape
        doc["mounts"].append({"destination": rng.choice(["../../x", "/../../x", "", "rel"]),
                              "type": "bind", "source": rng.choice(["/nonexistent", "", "../"]),
                              "options": ["bind"]})
        doc["process"]["args"] = ["/bin/true"]
    else:  # not even an object
        return rng.choice([[], "string", 42, None, [default_spec()]])
    return doc


def raw_cases(rng: random.Random) -> bytes:
    """Config files that are not JSON at all."""
    return rng.choice([b"", b"{", b"\xff\xfe\x00", b"{\"ociVersion\": \"1.0.0\"" * 1000,
                       b"null", bytes(rng.randrange(256) for _ in range(200)),
                       b"{\"a\": \"\\ud800\"}"])


def check(proc: subprocess.CompletedProcess[bytes], root: Path, cid: str) -> str | None:
    err = proc.stderr.decode(errors="replace")
    if "Traceback" in err:
        return f"traceback: {err[-300:]}"
    if proc.returncode == 0:
        return None  # a mutation that is still valid: it ran; delete below
    if proc.returncode != 1:
        return f"exit status {proc.returncode}: {err[-200:]}"
    if len(err.strip().splitlines()) != 1:
        return f"not one line: {err[-300:]}"
    if (root / cid).exists():
        return "state dir left"
    return None


def run_case(root: Path, bundle: Path, cid: str) -> str | None:
    """`run` the bundle's current config once; the problem found, if any."""
    proc = subprocess.run([PYRUNC, "--root", str(root), "run", "-b", str(bundle), cid],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
    problem = check(proc, root, cid)
    if proc.returncode == 0:
        subprocess.run([PYRUNC, "--root", str(root), "delete", "--force", cid],
                       capture_output=True)
    return problem


def run_configs(count: int, seed: int, work: Path) -> tuple[int, list[str]]:
    rng = random.Random(seed)
    bundle = work / "bundle"
    bundle.mkdir()
    shutil.copytree(cached_rootfs(), bundle / "rootfs", symlinks=True)
    base = default_spec(terminal=False)
    base["process"]["args"] = ["/bin/true"]
    root = work / "root"
    failures = []
    for i in range(count):
        cid = f"fz{i}"
        if rng.random() < 0.1:
            (bundle / "config.json").write_bytes(raw_cases(rng))
        else:
            try:
                (bundle / "config.json").write_text(json.dumps(mutate(rng, base)))
            except (ValueError, RecursionError, UnicodeEncodeError):
                continue
        problem = run_case(root, bundle, cid)
        if problem:
            failures.append(f"config #{i}: {problem}")
    return count, failures


def run_hypothesis(count: int, work: Path, progress: Path | None = None) -> tuple[int, list[str]]:
    """The same property, with hypothesis drawing the hostile values and where they go."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                     st.text(max_size=40), st.sampled_from(HOSTILE_VALUES))
    value = st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
        max_leaves=12)
    bundle = work / "hbundle"
    bundle.mkdir()
    shutil.copytree(cached_rootfs(), bundle / "rootfs", symlinks=True)
    base = default_spec(terminal=False)
    base["process"]["args"] = ["/bin/true"]
    root = work / "hroot"
    failures: list[str] = []
    done = [0]

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        doc: object = copy.deepcopy(base)
        # drawn values are copied: a shared one (HOSTILE_VALUES) changed by a later set_at
        # would make hypothesis's replays draw differently
        if data.draw(st.integers(0, 19)) == 0:
            doc = copy.deepcopy(data.draw(value))
        else:
            for _ in range(data.draw(st.integers(1, 4))):
                path = data.draw(st.sampled_from(json_paths(doc)[1:]))
                set_at(doc, path, copy.deepcopy(data.draw(value)))
        cid = f"hy{done[0]}"
        done[0] += 1
        try:
            (bundle / "config.json").write_text(json.dumps(doc))
        except (ValueError, UnicodeEncodeError):
            return
        problem = run_case(root, bundle, cid)
        if problem:
            failures.append(f"hypothesis #{done[0]}: {problem}")
        if progress is not None and done[0] % 250 == 0:
            progress.write_text(f"{done[0]} done, {len(failures)} failures\n")

    one()
    return done[0], failures


def argv_cases(rng: random.Random, bundle: str) -> list[str]:
    cmd = rng.choice(["create", "start", "run", "state", "kill", "delete", "exec", "list",
                      "ps", "pause", "resume", "bogus", ""])
    args = [cmd] if cmd else []
    for _ in range(rng.randrange(4)):
        args.append(rng.choice(["../x", "a/b", "x" * (1 << 20), "--bogus", "-b", bundle,
                                "--pid-file", "/nonexistent/dir/p", "--", "-", "\x01",
                                "--format=yaml", "--preserve-fds=-3", "KILL", "999",
                                "/dev/null", "--root", "."]))
    return args


def run_argv(count: int, seed: int, work: Path) -> tuple[int, list[str]]:
    rng = random.Random(seed)
    failures = []
    root = work / "argv-root"
    for i in range(count):
        argv = argv_cases(rng, str(work / "bundle"))
        try:
            proc = subprocess.run([PYRUNC, "--root", str(root), *argv], capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=30)
        except OSError as e:  # argument list too long for execve: not pyrunc's to see
            if e.errno == 7:
                continue
            raise
        err = proc.stderr.decode(errors="replace")
        if "Traceback" in err:
            failures.append(f"argv #{i} {argv!r:.80}: traceback {err[-200:]}")
        elif proc.returncode not in (0, 1, 255):
            failures.append(f"argv #{i} {argv!r:.80}: exit {proc.returncode}")
    return count, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10000)
    parser.add_argument("--argv", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", choices=["random", "hypothesis"], default="random",
                        help="who draws the config mutations")
    parser.add_argument("--progress", type=Path, default=None, help="file for progress lines")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pyrunc-fuzz-"))
    start = time.monotonic()
    try:
        if opts.engine == "hypothesis":
            n, failures = run_hypothesis(opts.configs, work, opts.progress)
        else:
            n, failures = run_configs(opts.configs, opts.seed, work)
        m, more = run_argv(opts.argv, opts.seed, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failures += more
    print(f"{n} configs, {m} argument lists, {len(failures)} failures, "
          f"{time.monotonic() - start:.0f} s")
    for f in failures[:50]:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the opencontainers/runtime-tools validation programs against one runtime.

    .venv/bin/python -m conformance.runtime_tools --runtime /usr/sbin/runc \\
        --validation-dir /tmp/rt-src --report-dir /tmp/rt-report [--timeout 60] [--attempts N]
        [--only NAME ...] [--no-skip]

`--validation-dir` is a runtime-tools checkout built with its own make targets
(`conformance/build_runtime_tools.sh CHECKOUT` runs `make runtimetest validation-executables`);
the programs are `validation/<name>/<name>.t`, and `runtimetest` plus `rootfs-<arch>.tar.gz`
sit at the checkout's top. Each program runs in a fresh temporary directory (its cwd and TMPDIR,
holding runtimetest and a link to the rootfs tarball) with RUNTIME pointing at a wrapper that
gives the runtime a private `--root` and saves each created config. Afterwards the containers in
that root are deleted with --force, stray processes of the program's process group killed, the
cgroups its configs named removed, and mounts under the temp dir detached.

Results: `<report-dir>/<name>.out|.err` (raw TAP and stderr), `report.txt` (one line per program:
PASS/FAIL/SKIP with the first failing line), `results.json`, `summary.tap` (one TAP point per
program) and an `N passed, M failed, K skipped` line on stdout. Programs listed in
`runtime_tools_skip.txt` are not run; they are reported as SKIP with the listed reason.
`--compare A B` prints a markdown table of two report dirs' results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from conformance import rt_cleanup, tap

_GENERIC_STDERR = re.compile(r"^(failed to (create|start) the container|exit status \d+)$")
SKIP_LIST = Path(__file__).with_name("runtime_tools_skip.txt")
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}

WRAPPER = """#!/bin/sh
# conformance.runtime_tools: a private state root, and a copy of each created config.
bundle=.; cmd=; prev=
for a in "$@"; do
  case "$prev" in --bundle|-b) bundle="$a";; esac
  case "$a" in --bundle=*) bundle="${{a#--bundle=}}";; esac
  if [ -z "$cmd" ]; then case "$a" in create|run) cmd="$a";; esac; fi
  prev="$a"
done
if [ -n "$cmd" ] && [ -f "$bundle/config.json" ]; then
  cp "$bundle/config.json" "{configs}/$(date +%s%N)-$$.json" 2>/dev/null
fi
exec {runtime} --root {state} "$@"
"""


@dataclass
class Result:
    """The verdict of one validation program."""

    name: str
    verdict: str  # pass, fail or skip
    reason: str = ""
    seconds: float = 0.0
    exit_status: int | None = None


def find_programs(checkout: Path) -> dict[str, Path]:
    """Validation program name -> executable (`validation/<name>/<name>.t`)."""
    vdir = checkout / "validation" if (checkout / "validation").is_dir() else checkout
    found = {}
    for prog in sorted(vdir.glob("*/*.t")):
        if prog.stem == prog.parent.name and os.access(prog, os.X_OK):
            found[prog.stem] = prog
    return found


def find_support(checkout: Path) -> tuple[Path, Path]:
    """The runtimetest binary and the rootfs tarball the programs expect in their cwd."""
    arch = GOARCH.get(platform.machine(), platform.machine())
    for top in (checkout, checkout.parent):
        runtimetest, rootfs = top / "runtimetest", top / f"rootfs-{arch}.tar.gz"
        if runtimetest.is_file() and rootfs.is_file():
            return runtimetest, rootfs
    raise SystemExit(f"runtime_tools: no runtimetest and rootfs-{arch}.tar.gz in {checkout}: "
                     "build it with conformance/build_runtime_tools.sh")


def load_skip_list(path: Path = SKIP_LIST) -> dict[str, str]:
    """`name  reason` lines (blank and # lines ignored) -> {name: reason}."""
    skips = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        skips[name] = reason.strip() or "listed in " + path.name
    return skips


def verdict(stdout: str, stderr: str, exit_status: int) -> tuple[str, str]:
    """Pass, fail or skip for one program, and the first failing line (or the skip reason)."""
    streams = tap.parse_all(stdout)
    failures = [p for s in streams for p in s.failures]
    if failures:
        return "fail", failures[0].line
    orphans = [e for s in streams for e in s.orphan_errors]
    if orphans:
        return "fail", "error: " + orphans[0].splitlines()[0]
    bail = next((s.bail_out for s in streams if s.bail_out is not None), None)
    if bail is not None:
        return "fail", f"Bail out! {bail}"
    err_lines = [ln.strip() for ln in stderr.splitlines()
                 if ln.strip() and not _GENERIC_STDERR.match(ln.strip())]
    if exit_status != 0:
        detail = next((ln for ln in err_lines if "level=error" in ln),
                      err_lines[0] if err_lines else "")
        return "fail", f"exit status {exit_status}" + (f": {detail}" if detail else "")
    if not streams:
        # the *_fail programs print nothing when the runtime rightly refuses the config:
        # their verdict is the exit status alone (util.Fatal exits 1 otherwise)
        return "pass", "no TAP output; exit status 0"
    for stream in streams:
        if not stream.plan_ok:
            return "fail", (f"plan 1..{stream.planned} but {len(stream.points)} test points"
                            if stream.planned is not None else "no TAP plan")
    if all(s.all_skipped for s in streams):
        first = next((s.plan_directive or (s.points[0].directive if s.points else "")
                      for s in streams), "")
        return "skip", first
    return "pass", ""


def _run_one(name: str, prog: Path, runtime: str, runtimetest: Path, rootfs: Path,
             report_dir: Path, timeout: float) -> Result:
    work = Path(tempfile.mkdtemp(prefix=f"rt-{name}-"))
    state, configs, tmp = work / "state", work / "configs", work / "tmp"
    for d in (state, configs, tmp):
        d.mkdir()
    # like /tmp: a user-namespaced container's root must reach its bundle under TMPDIR
    work.chmod(0o711)
    tmp.chmod(0o1777)
    shutil.copy2(runtimetest, work / "runtimetest")  # the programs copy it; a link stays a link
    (work / rootfs.name).symlink_to(rootfs)
    wrapper = work / "runtime"
    wrapper.write_text(WRAPPER.format(configs=configs, runtime=runtime, state=state))
    wrapper.chmod(0o755)
    env = dict(os.environ, RUNTIME=str(wrapper), TMPDIR=str(tmp))
    out_path, err_path = report_dir / f"{name}.out", report_dir / f"{name}.err"
    start = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen([str(prog)], cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        try:
            status: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = None
    seconds = round(time.monotonic() - start, 2)
    rt_cleanup.kill_process_group(proc.pid)
    rt_cleanup.delete_containers(runtime, state)
    rt_cleanup.remove_cgroups(rt_cleanup.config_cgroup_paths(configs))
    rt_cleanup.unmount_under(work)
    shutil.rmtree(work, ignore_errors=True)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    if status is None:
        return Result(name, "fail", f"timeout after {timeout:g} s", seconds, None)
    kind, reason = verdict(stdout, stderr, status)
    return Result(name, kind, reason, seconds, status)


def _run_with_attempts(name: str, prog: Path, runtime: str, runtimetest: Path, rootfs: Path,
                       report_dir: Path, timeout: float, attempts: int) -> Result:
    """Run until a non-failing verdict or `attempts` runs; a late pass names the first failure."""
    first = _run_one(name, prog, runtime, runtimetest, rootfs, report_dir, timeout)
    result = first
    for attempt in range(2, max(attempts, 1) + 1):
        if result.verdict != "fail":
            break
        result = _run_one(name, prog, runtime, runtimetest, rootfs, report_dir, timeout)
        if result.verdict != "fail":
            result.reason = (f"attempt {attempt} of {attempts} (attempt 1: {first.reason})"
                             + (f"; {result.reason}" if result.reason else ""))
    return result


def write_reports(results: list[Result], report_dir: Path, runtime: str) -> str:
    """Write report.txt, results.json and summary.tap; return the summary line."""
    counts = {k: sum(r.verdict == k for r in results) for k in ("pass", "fail", "skip")}
    summary = f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    lines = [f"# runtime-tools validation against {runtime}"]
    tap_lines = ["TAP version 13", f"1..{len(results)}"]
    for i, r in enumerate(results, 1):
        lines.append(f"{r.verdict.upper():4} {r.name} ({r.seconds:g} s)"
                     + (f": {r.reason}" if r.reason else ""))
        if r.verdict == "pass":
            tap_lines.append(f"ok {i} - {r.name}")
        elif r.verdict == "skip":
            tap_lines.append(f"ok {i} - {r.name} # SKIP {r.reason}")
        else:
            tap_lines.append(f"not ok {i} - {r.name}")
            tap_lines.append(f"  ---\n  first_failure: {json.dumps(r.reason)}\n  ...")
    lines.append(summary)
    tap_lines.append(f"# {summary}")
    (report_dir / "report.txt").write_text("\n".join(lines) + "\n")
    (report_dir / "summary.tap").write_text("\n".join(tap_lines) + "\n")
    (report_dir / "results.json").write_text(json.dumps(
        {"runtime": runtime, "summary": summary, "results": [asdict(r) for r in results]},
        indent=1) + "\n")
    return summary


def compare(a_dir: Path, b_dir: Path) -> str:
    """A markdown table of two report dirs' per-program verdicts, differences marked."""
    a = json.loads((a_dir / "results.json").read_text())
    b = json.loads((b_dir / "results.json").read_text())
    ra = {r["name"]: r for r in a["results"]}
    rb = {r["name"]: r for r in b["results"]}
    name_a, name_b = Path(a["runtime"]).name, Path(b["runtime"]).name
    rows = [f"| program | {name_a} | {name_b} | note |", "|---|---|---|---|"]
    for name in sorted(set(ra) | set(rb)):
        va, vb = ra.get(name, {}).get("verdict", "-"), rb.get(name, {}).get("verdict", "-")
        note = "**differs**" if va != vb else ""
        rows.append(f"| {name} | {va} | {vb} | {note} |")
    rows.append(f"| **total** | {a['summary']} | {b['summary']} | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.runtime_tools",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", help="runtime executable (runc-compatible CLI)")
    parser.add_argument("--validation-dir", type=Path, help="built runtime-tools checkout")
    parser.add_argument("--report-dir", type=Path, help="where the reports go")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per program")
    parser.add_argument("--attempts", type=int, default=1,
                        help="run a failing program up to this many times (a shared host's "
                             "other test suites may kill its containers); retries are reported")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these programs")
    parser.add_argument("--no-skip", action="store_true", help="run skip-listed programs too")
    parser.add_argument("--compare", nargs=2, type=Path, metavar="REPORT_DIR",
                        help="print a markdown table comparing two report dirs and exit")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare(*args.compare))
        return 0
    if not (args.runtime and args.validation_dir and args.report_dir):
        parser.error("--runtime, --validation-dir and --report-dir are required")
    runtime = shutil.which(args.runtime) or args.runtime
    if not os.access(runtime, os.X_OK):
        parser.error(f"--runtime {args.runtime}: not an executable")
    checkout = args.validation_dir.resolve()
    programs = find_programs(checkout)
    if not programs:
        parser.error(f"--validation-dir {checkout}: no validation/<name>/<name>.t programs")
    unknown = sorted(set(args.only or []) - set(programs))
    if unknown:
        parser.error(f"--only: unknown programs {', '.join(unknown)}")
    runtimetest, rootfs = find_support(checkout)
    skips = {} if args.no_skip else load_skip_list()
    args.report_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.only or list(programs):
        if name in skips:
            result = Result(name, "skip", skips[name])
        else:
            result = _run_with_attempts(name, programs[name], runtime, runtimetest.resolve(),
                                        rootfs.resolve(), args.report_dir, args.timeout,
                                        args.attempts)
        results.append(result)
        print(f"{result.verdict.upper():4} {name}" + (f": {result.reason}" if result.reason
                                                      else ""), flush=True)
    summary = write_reports(results, args.report_dir, runtime)
    print(summary)
    return 0 if all(r.verdict != "fail" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

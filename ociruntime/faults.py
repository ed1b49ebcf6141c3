"""Test-only fault injection, read from the environment in this one place.

PYRUNC_TEST_FAULT=<point> makes that phase of create fail as a real error would;
PYRUNC_TEST_PAUSE=<point> makes the process stop there (sleep) so a test can SIGKILL it.
Points, in order: claimed, planned (state written, cgroups not yet made), cgroups, spawned,
placement, bootstrap, init, mounts, ready, recorded; and `tenant` in exec, the moment before
the exec'd process leaves the runtime's interpreter. Unset in production, where each check
is one dict lookup.
"""

from __future__ import annotations

import os
import time

from ociruntime.errors import RuntimeFailure

FAULT_ENV = "PYRUNC_TEST_FAULT"
PAUSE_ENV = "PYRUNC_TEST_PAUSE"
POINTS = ("claimed", "planned", "cgroups", "spawned", "placement", "bootstrap", "init", "mounts",
          "ready", "recorded", "tenant")


def check(point: str) -> None:
    """Fail or pause at `point` when a test asked for it."""
    if os.environ.get(FAULT_ENV) == point:
        raise RuntimeFailure(f"injected fault at {point}")
    if os.environ.get(PAUSE_ENV) == point:
        os.write(2, f"pyrunc: paused at {point} (pid {os.getpid()})\n".encode())
        time.sleep(3600)

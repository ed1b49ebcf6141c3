"""exec's view of a container whose init is gone (the race podman's exec hits)."""

from __future__ import annotations

import os

import pytest

from ociruntime.errors import RuntimeFailure
from ociruntime.process.tenant import _namespace_fds


def test_vanished_init_reads_as_a_stopped_container():
    """Not "No such file or directory": podman turns that into "command not found" (127)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # reaped: /proc/PID is gone
    config = {"linux": {"namespaces": [{"type": "uts"}, {"type": "mount"}]}}
    with pytest.raises(RuntimeFailure, match="^cannot exec in a stopped container$"):
        _namespace_fds(pid, config)
    assert _namespace_fds(os.getpid(), config) == {}, "our own namespaces need no fds"

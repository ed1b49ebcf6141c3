"""host_mounts: which mount points of /proc/self/mountinfo lie under a rootfs (octal escapes
decoded as the kernel writes them)."""

from __future__ import annotations

from ociruntime.linux.host_mounts import mounts_under

# lines as the kernel writes them (a space in a path is \040, a backslash \134)
MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
120 22 0:5 / /tmp/b\\040x/rootfs/proc rw,nosuid - proc proc rw
121 22 0:50 / /tmp/b\\040x/rootfs/dev rw,nosuid - tmpfs tmpfs rw,mode=755
122 121 0:51 / /tmp/b\\040x/rootfs/dev/pts rw - devpts devpts rw
123 22 0:52 / /tmp/b\\040x/rootfs-other rw - tmpfs tmpfs rw
124 22 0:53 / /tmp/a\\134b rw - tmpfs tmpfs rw
"""


def test_mounts_under_decodes_escapes_and_stops_at_the_path_boundary():
    found = mounts_under("/tmp/b x/rootfs/", MOUNTINFO)
    assert found == {120: "/tmp/b x/rootfs/proc", 121: "/tmp/b x/rootfs/dev",
                     122: "/tmp/b x/rootfs/dev/pts"}
    assert mounts_under("/tmp/a\\b", MOUNTINFO) == {124: "/tmp/a\\b"}
    assert set(mounts_under("/", MOUNTINFO)) == {22, 120, 121, 122, 123, 124}

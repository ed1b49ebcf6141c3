"""Read a bundle's config.json, validate it, and resolve the rootfs path."""

from __future__ import annotations

import os

from ociruntime.errors import ConfigError
from ociruntime.jsonio import loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


CONFIG_NAME = "config.json"
MAX_CONFIG_BYTES = 16 << 20


def load_bundle(bundle: str) -> tuple[dict[str, Any], str]:
    """Return (validated config, absolute rootfs path) for the bundle directory."""
    path = os.path.join(bundle, CONFIG_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise ConfigError(path, e.strerror or str(e)) from None
    try:
        st = os.fstat(fd)
        import stat as _stat

        if not _stat.S_ISREG(st.st_mode):
            raise ConfigError(path, "not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(path, f"larger than {MAX_CONFIG_BYTES} bytes")
        raw = os.read(fd, MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    try:
        doc = loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(path, f"not valid JSON: {e}") from None
    from ociruntime.config.validate import check_semantics, validate_config

    validate_config(doc, path)
    check_semantics(doc, path)
    root = doc.get("root")
    if not isinstance(root, dict) or not root.get("path"):
        raise ConfigError(f"{path}: $.root.path", "is required on Linux")
    rootfs = root["path"]
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(f"{path}: $.root.path", f"rootfs {rootfs} does not exist or is not a "
                          "directory")
    return doc, rootfs

"""pyrunc: an OCI runtime-spec container runtime, a drop-in for runc."""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"

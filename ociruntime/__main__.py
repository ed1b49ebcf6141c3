"""`python -m ociruntime` is `pyrunc`."""

from ociruntime.cli import main

main()

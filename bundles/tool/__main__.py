"""`python -m bundles.tool` is `pyrunc-bundle` (the network hooks run it this way)."""

from bundles.tool.cli import main

main()

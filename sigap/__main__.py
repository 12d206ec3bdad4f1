"""`python -m sigap` runs the `sigap` command."""

from sigap.cli import main

main()

"""`python -m arkwright.cli`: the same command as the `arkwright` script."""

from arkwright.cli import main

main()

"""`python -m erarm ...`: the same command line as `erarm ...`."""

from erarm.agent.cli import main

main()

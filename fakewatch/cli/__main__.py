"""`python -m fakewatch.cli` runs the command line."""

from fakewatch.cli import main

main()

"""`python -m crossplan.cli`: the same as the `plan` command."""

from crossplan.cli import main

main()

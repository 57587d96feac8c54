"""`python -m stablelearn`: the same program as the `stablelearn` command."""

from stablelearn.entry import main

main()

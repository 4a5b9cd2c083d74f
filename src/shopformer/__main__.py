"""`python -m shopformer` runs the command line."""

from shopformer.cli import main

main()

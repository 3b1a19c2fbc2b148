"""`python -m apps.local`: the same as `todo-local`."""

from apps.local.cli import main

main()

"""``python -m ftctl`` runs the command line."""

from ftctl.cli import main

main()

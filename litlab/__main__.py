"""``python -m litlab``: the same as the ``litlab`` command."""

from litlab.cli import main

main()

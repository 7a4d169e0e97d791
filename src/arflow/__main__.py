"""``python -m arflow``: the same as the ``arflow`` command."""

from .cli import main

raise SystemExit(main())

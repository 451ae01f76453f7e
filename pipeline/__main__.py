"""``python -m pipeline``: the same as the ``papermail`` command."""

from pipeline.cli import main

raise SystemExit(main())

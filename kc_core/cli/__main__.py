"""``python -m kc_core.cli``: the ``kc`` command."""

from . import main

raise SystemExit(main())

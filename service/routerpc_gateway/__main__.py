"""``python -m routerpc_gateway`` is the ``routerpc`` command."""

from routerpc_gateway.cli import main

raise SystemExit(main())

"""`python -m fastapi_cachekit`: the `cachekit` command line (see fastapi_cachekit/cli.py)."""

from .cli import main

raise SystemExit(main())

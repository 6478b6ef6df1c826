"""`python -m service` is the `bcwebhooks` command."""

from service.cli import main

raise SystemExit(main())

"""`python -m authz` is the `authz` command."""

import sys

from authz.cli.main import main

if __name__ == "__main__":  # not when a helper process (authz.server.parse_pool) imports this module
    sys.exit(main())

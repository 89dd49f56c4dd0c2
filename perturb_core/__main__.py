"""``python -m perturb_core``: the command line."""

import sys

from perturb_core.cli import main

sys.exit(main())

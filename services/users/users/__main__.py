"""``python -m users migrate``."""

import sys

from atlas_common.cli import main

sys.exit(main("users"))

"""``python -m projects migrate``."""

import sys

from atlas_common.cli import main

sys.exit(main("projects"))

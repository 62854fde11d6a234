"""``python -m auth migrate | serve | create-client | generate-key``."""

import sys

from atlas_common.cli import main

sys.exit(main("auth"))

"""``python -m operator_core.cli``."""

import sys

from operator_core.cli import main

sys.exit(main())

"""``python -m cis_eval.cli``."""

import sys

from .main import main

sys.exit(main())

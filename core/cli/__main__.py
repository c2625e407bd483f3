"""``python -m core.cli ...`` (and ``torchrun ... -m core.cli train ...``) run `icsg3d`."""

import sys

from core.cli import main

sys.exit(main())

"""`python -m exporter.simulator`: the same as `openai-admin-api-simulator`."""

import sys

from exporter.simulator.cli import main

sys.exit(main())

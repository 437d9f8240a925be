"""`python -m host_pm_exporter`."""

import sys

from host_pm_exporter.main import main

sys.exit(main())

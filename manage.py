#!/usr/bin/env python
"""Run PasteTrader's management commands: ``python manage.py --help``."""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from project.management import main

    main()

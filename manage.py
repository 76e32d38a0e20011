#!/usr/bin/env python
"""Run PasteTrader's management commands: ``python manage.py --help``."""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Compile once: cache the bytecode of what a command imports even where the machine
    # sets PYTHONDONTWRITEBYTECODE, so the next command starts warm (git-ignored caches).
    sys.dont_write_bytecode = False
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from project.management import main

    main()

"""The `lowcarbon` console script: every Django management command of the platform.

`lowcarbon migrate`, `lowcarbon serve --demo`, `lowcarbon import-readings FILE`, `lowcarbon quantify` ...
Command names may be written with dashes; they map to the management commands with underscores.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lowcarbon.config.settings")
    args = list(sys.argv if argv is None else ["lowcarbon", *argv])
    if len(args) > 1 and not args[1].startswith("-"):
        args[1] = args[1].replace("-", "_")
    from django.core.management import execute_from_command_line

    execute_from_command_line(args)


if __name__ == "__main__":
    main()

"""Entry point PyInstaller freezes into ``dist/commune-agent``: the same ``agent.cli.main`` as the
``commune-agent`` console script, so the single file and the venv agent share one command line."""

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.exit(main())

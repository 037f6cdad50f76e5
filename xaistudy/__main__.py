"""``python -m xaistudy``: the command line, for launchers such as ``accelerate launch -m``."""

import sys

from xaistudy.app.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m simgate``: the report and replay commands (:mod:`simgate.cli`; the gate itself is ``pytest``)."""

import sys

from simgate.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""The guide's entry point, kept working: ``python web.py -p=8000 -t=TOKEN -c=CORPID -a=AESKEY``."""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())

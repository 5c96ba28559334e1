import sys

from cvrkd.cli import main

sys.exit(main())

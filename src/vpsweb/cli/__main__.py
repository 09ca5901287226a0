import sys

from vpsweb.cli import main

sys.exit(main())

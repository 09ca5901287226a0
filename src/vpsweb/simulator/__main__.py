import sys

from vpsweb.simulator.server import main

sys.exit(main())

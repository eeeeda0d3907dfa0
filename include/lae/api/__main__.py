import sys

from lae.api import main

sys.exit(main())

import sys

from wasiport.cli import main

sys.exit(main())

import sys

from debate_ft.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m cascade_cli`: the same entry point as the `cascade` console script."""

from cascade_cli.cli import main

if __name__ == "__main__":
    main()

"""`python -m daemon` runs the `baton` command."""

from daemon.cli import main

if __name__ == "__main__":
    main()

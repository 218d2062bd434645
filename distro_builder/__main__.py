"""`python -m distro_builder` entry point."""

from distro_builder.cli import main

if __name__ == "__main__":
    main()

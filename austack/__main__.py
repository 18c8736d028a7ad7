"""`python -m austack ...` is the `austack` command."""
from austack.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="austack")

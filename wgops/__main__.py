"""``python -m wgops``: the command line (what circus runs for each daemon)."""

from wgops.console.cli import main

main()

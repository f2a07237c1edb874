"""Training and evaluation recipes of the three problem families (the library behind the
``ocp-learn`` subcommands)."""

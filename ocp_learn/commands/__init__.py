"""Subcommands of ``ocp-learn``: one module per command family.

Each module registers its commands with :func:`ocp_learn.cli.subcommand` and
may add a part to ``ocp-learn demo`` with :func:`ocp_learn.cli.register_demo`.
"""

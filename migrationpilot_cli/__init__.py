"""MigrationPilot command-line tool. The package's face is its version only: the entry point
is ``migrationpilot_cli.__main__``, which brings in the app."""

__version__ = "0.1.0"

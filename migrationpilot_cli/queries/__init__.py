"""One module per noun: parameterized SQL and small functions taking a connection.

Query functions never print; they return dict rows (see ``db.connect``) or raise the errors
of ``migrationpilot_cli.errors``."""

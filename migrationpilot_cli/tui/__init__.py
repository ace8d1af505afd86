"""Full-screen views built with Textual, imported only by the commands that open them (so no
other command, and no `--help`, pays for Textual): `review queue` (app, widgets), with its
state and database calls in `session`."""

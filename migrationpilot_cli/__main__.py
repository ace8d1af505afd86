from migrationpilot_cli import main

main()

from migrationpilot_cli.app import main

main()

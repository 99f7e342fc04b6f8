"""The `kiosk` command line, one module per group of commands; `kit` is what every command line of the project shares."""

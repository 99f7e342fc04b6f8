"""The door: a scan decided and stored (check_in), what the door screen reads, signed sheet rows scanned back, camera frames."""

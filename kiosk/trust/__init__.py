"""Keys by purpose (origin signing, national-ID hashing), each program's key, and staff accounts with their sessions and tokens."""

"""Database engines, tables and migrations for the terminal and the host."""

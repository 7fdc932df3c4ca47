"""Staff, roles and permissions, passwords and second factors, sessions."""

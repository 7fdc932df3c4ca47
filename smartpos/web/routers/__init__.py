"""The cashier app's routes, one module per area; each is thin over the services."""

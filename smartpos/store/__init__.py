"""The store: catalog, orders (carts), payments of orders, shifts."""

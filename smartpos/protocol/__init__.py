"""ISO 8583 link between terminal and host: spec (data), framing, typed messages, codes."""

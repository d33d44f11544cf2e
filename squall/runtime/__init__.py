"""Running function code: instance processes, the wire protocol to them, and the pool."""

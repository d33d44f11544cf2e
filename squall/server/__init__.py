"""The squall node: the ASGI app (platform API + user routes), deploys, and the server entry points."""

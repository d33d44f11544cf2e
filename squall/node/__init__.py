"""The node: the core of one squall server. It holds the deployed functions and the releases
that reach them, resolves a call to a version and invokes it through the instance pool, and is
the composition root that wires the events, the runtime and the tables to the store.

Modules: `core` (the Node and its invoke path), `aliases` (release state and alias moves),
`deploy` and `promote` (new versions), `specs` (what an instance is started with),
`secret_env` (secrets into instance environments), `credential_refresh`.
"""

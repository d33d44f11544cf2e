"""squall's command-line interface: a thin click layer over `squall.client` and friends.

The entry point is `squall.cli.main:main`; the command tree is `squall.cli.main.cli`.
"""

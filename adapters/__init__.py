"""The adapters ring: infrastructure behind the application's ports, the CLI and the composition root.

May import the application and the domain; nothing imports adapters except the entry points.
"""

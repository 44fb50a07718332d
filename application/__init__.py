"""The application ring: use-cases that drive the domain through ports.

Imports the domain and the ports it defines; never an adapter.
"""

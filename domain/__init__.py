"""The domain ring: generations, quotas, the model catalogue and its rules.

Imports nothing of ours and does no I/O; the application and adapters depend on it, never the reverse.
"""

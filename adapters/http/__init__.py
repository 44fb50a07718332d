"""HTTP: the FastAPI router and app (an optional extra: `pip install -e ".[http]"`).

Only `app` imports FastAPI; `status` is plain Python, shared with the embedded entry point.
"""

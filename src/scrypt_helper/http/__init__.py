"""The HTTP layer: routers, their shared dependencies, error handlers and pure-ASGI middleware.

``app.create_app(node)`` assembles them; nothing here builds a node or owns state of its own.
"""

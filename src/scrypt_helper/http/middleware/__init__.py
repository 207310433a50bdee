"""Pure-ASGI middleware, one per module; ``http.app`` stacks them in front of the routers."""

"""Pure-ASGI middleware, one per module; ``web.app`` stacks them in front of the routers."""

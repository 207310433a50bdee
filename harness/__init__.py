"""Development-only harnesses for the tests and ``scripts/``: real servers on loopback.

Not part of the installed package: they read files that exist only in a source checkout
(``deploy/nginx``). The tests reach this package through pytest's ``pythonpath``; the
scripts put the checkout's root on ``sys.path`` themselves.
"""

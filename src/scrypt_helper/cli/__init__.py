"""The ``scrypt-helper`` command line: ``main`` builds the parser, one module per group of commands."""

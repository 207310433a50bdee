"""Largest scrypt parameters the service accepts: the one definition of these limits.

Python validates with them (engines/base.py) and setup.py reads this file, without
importing the package, to pass each one to the C build as a ``SCRYPT_``-prefixed macro
(``MAX_R`` becomes ``SCRYPT_MAX_R``). Keep it to plain ``NAME = int`` lines.
"""

MAX_LOG2_N = 20
MAX_R = 32
MAX_P = 16
MAX_BUFLEN = 1024

"""``python -m scrypt_helper``: the same as the ``scrypt-helper`` command."""

import sys

from scrypt_helper.cli import main

sys.exit(main())

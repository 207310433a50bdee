"""``python -m scrypt_helper``: the same as the ``scrypt-helper`` command."""

import sys

from scrypt_helper.cli.main import main

sys.exit(main())

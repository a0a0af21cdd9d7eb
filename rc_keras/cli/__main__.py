"""``python -m rc_keras.cli``: the ``rc-keras`` command."""

import sys

from rc_keras.cli import main

sys.exit(main())

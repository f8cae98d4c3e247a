"""What rflint is: its version and where its own code lives.

The one module every stage may import: it imports nothing, so reading the version (cache
keys, SARIF, the language server) never pulls in the public API or a front end.
"""

import os

__version__ = "0.1.0"
PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__)) + os.sep  # frames and files in here are rflint's own

"""polymodal core: the one exception tree, plain-data config and the offline model supply.

Everything here is light to import (stdlib only at module level); the four layers
(`indexes`, `tools`, `orchestrator`, and the orchestrator side of `edge`) build on it.
"""

from polymodal.errors import PolymodalError

__version__ = "0.1.0"
__all__ = ["PolymodalError", "__version__"]

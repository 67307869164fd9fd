"""torch.hub entry points: ``<method>_local(ckpt, **kwargs)`` for every method of
``speechssl.models.METHODS``, each :func:`speechssl.hub.load` of an exp dir or checkpoint
of that method (``kwargs``: ``training_data``, ``device``).  From a checkout::

    torch.hub.load("/path/to/speechssl", "apc_local", ckpt="exp/apc", source="local")
"""

import sys
from pathlib import Path

# The package's source root (ssl/ itself is not a package: `import ssl` stays Python's).
_SSL_DIR = str(Path(__file__).resolve().parent / "ssl")
if _SSL_DIR not in sys.path:
    sys.path.insert(0, _SSL_DIR)

from speechssl import hub as _hub  # noqa: E402
from speechssl.models import METHODS as _METHODS  # noqa: E402

dependencies = ["torch", "numpy", "yaml", "soundfile", "kaldi_native_fbank"]


def _entry_point(method: str):
    def entry(ckpt, **kwargs):
        return _hub.load(ckpt, method=method, **kwargs)

    entry.__name__ = entry.__qualname__ = f"{method}_local"
    entry.__doc__ = (f"The frozen {method} upstream of ``ckpt`` (an exp dir or a checkpoint); "
                     "see speechssl.hub.load for ``kwargs``.")
    return entry


for _method in _METHODS:
    globals()[f"{_method}_local"] = _entry_point(_method)

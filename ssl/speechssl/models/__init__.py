"""Self-supervised methods, by the name a YAML config gives in ``method:``.

The registry is this visible dict, nothing registers itself at import time.
"""

from __future__ import annotations

from speechssl.errors import InputError
from speechssl.models.apc import APC
from speechssl.models.base import SSLMethod
from speechssl.models.cae import FrameCAE
from speechssl.models.capc import CAPC
from speechssl.models.cpc import CPC
from speechssl.models.mockingjay import TERA, AudioALBERT, Mockingjay
from speechssl.models.vicreg import VICReg

METHODS: dict[str, type[SSLMethod]] = {
    "apc": APC,
    "cpc": CPC,
    "capc": CAPC,
    "cae": FrameCAE,
    "vicreg": VICReg,
    "mockingjay": Mockingjay,
    "tera": TERA,
    "albert": AudioALBERT,
}


def method_class(name: str) -> type[SSLMethod]:
    if name not in METHODS:
        raise InputError(f"unknown method '{name}'; available: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "SSLMethod", "method_class"]

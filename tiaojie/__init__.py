"""Tiaojie (调解): online dispute mediation rooms, recorded as evidence, agreements signed.

One import name, in layers (docs/ARCHITECTURE.md): `tiaojie.rtc` and `tiaojie.archive` at
the bottom, `tiaojie.signing`, `tiaojie.client`, `tiaojie.recorder` and `tiaojie.server`
above them, and `tiaojie.cli`, the command that starts any of them, on top. This module
holds only the version, so importing it pulls in nothing else.
"""

__version__ = "0.1.0"

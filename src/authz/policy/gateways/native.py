"""A gateway that takes our own spelling (naming_profile = "native"): catalog ids, the
catalog's aliases, and no routing contract beyond the model (an OpenAI-compatible gateway of
your own, the stand-in the demo runs)."""

from __future__ import annotations

from authz.policy.gateways.description import Contract, Description, Spelling

GATEWAY = Description(name="native", title="Your own gateway", spelling=Spelling(), contract=Contract("native"))

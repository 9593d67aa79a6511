"""type auto: the one registered decoder whose tensor shapes match, with its own defaults plus the
common keys given here."""
from __future__ import annotations

from typing import Literal, Sequence

from pydantic import Field

from app.modelfile import TensorSpec
from app.decoders import DECODERS, Decoder, DecoderBase, describe
from app.errors import ModelError
from app.plugins import RunContext


class Config(DecoderBase):
    type: Literal["auto"] = Field("auto", description="auto picks the one decoder whose tensor shapes match")


def candidates() -> list[str]:
    """The decoders auto chooses among: every registered one but itself."""
    return [name for name in DECODERS.names() if DECODERS.config_class(name) is not Config]


def matches(_name: str, specs: Sequence[TensorSpec]) -> bool:
    return True  # build says which one, or why none


def build(cfg: Config, ctx: RunContext, specs: list[TensorSpec], labels: list[str],
          input_size: tuple[int, int]) -> Decoder:
    names = candidates()
    found = [name for name in names if DECODERS.module(name).matches(name, specs)]
    if not found:
        raise ModelError(f"model outputs match no decoder ({', '.join(names)}): {describe(specs)}")
    if len(found) > 1:
        raise ModelError(f"model outputs match several decoders ({', '.join(found)}); set decoder.type")
    # only the keys that were set, so the decoder tells given values from defaults (class_thresholds)
    given = cfg.model_dump(exclude={"type"}, exclude_unset=True)
    chosen = DECODERS.config_class(found[0]).model_validate({**given, "type": found[0]})
    return DECODERS.build(chosen, ctx, specs, labels, input_size)

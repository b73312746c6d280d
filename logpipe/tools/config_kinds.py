"""The kinds of configuration file logpipe reads: which model holds each, who reads it, how it is checked.

One table shared by ``logpipe config check`` (validation) and :mod:`logpipe.dev.config_docs` (the
reference in docs/CONFIG.md), so both always cover the same files with the same models. Models are
imported lazily: ``logpipe config check`` of a shipper file need not import the consumer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from logpipe.core.config_base import read_yaml, validate_mapping


def _resolve(ref: str) -> Any:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ConfigKind:
    """One kind of configuration file.

    ``validator`` (``"module:function"``, called as ``f(data, source)``) replaces plain model
    validation when the owner of the file checks more than the model can (alert rules compile their
    ``where`` expressions and check channel references); ``reader`` likewise replaces
    :func:`logpipe.core.config_base.read_yaml`. Both raise :class:`logpipe.core.config_base.ConfigError`.
    """

    name: str
    model_ref: str
    title: str
    used_by: tuple[str, ...]
    example: str
    validator: str | None = None
    reader: str | None = None

    def model(self) -> type[BaseModel]:
        """The pydantic model of the whole file."""
        model = _resolve(self.model_ref)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{self.model_ref} is not a pydantic model")
        return model

    def read(self, path: str | Path) -> Any:
        """The file's parsed YAML; raises ConfigError naming the line of a syntax error."""
        if self.reader is not None:
            return _resolve(self.reader)(path)
        return read_yaml(path)

    def validate(self, data: Any, source: str, **options: Any) -> BaseModel:
        """The validated configuration; raises ConfigError with one ``key.path: problem — fix`` per error.

        ``options`` go to the owner's validator (alert rules: ``alertmanager_url``, as the flag of
        ``logpipe consume`` and ``logpipe alerts validate``); plain models take none.
        """
        if self.validator is not None:
            result = _resolve(self.validator)(data, source, **options)
            assert isinstance(result, BaseModel)
            return result
        return validate_mapping(self.model(), data, source)


KINDS: dict[str, ConfigKind] = {
    k.name: k
    for k in (
        ConfigKind(
            name="shipper",
            model_ref="shipper.config:ShipperConfig",
            title="Shipper",
            used_by=("logpipe ship --config FILE",),
            example="examples/shipper.yaml",
        ),
        ConfigKind(
            name="consumer",
            model_ref="consumer.config:ConsumerConfig",
            title="Consumer",
            used_by=("logpipe consume --config FILE",),
            example="examples/consumer.yaml",
        ),
        ConfigKind(
            name="rules",
            model_ref="consumer.alerts.rules:RuleFile",
            title="Alert rules",
            used_by=("logpipe consume --rules FILE", "logpipe alerts validate FILE"),
            example="examples/rules.yaml",
            # the same checks as `logpipe alerts validate`: where-expressions, regexes, channel references
            validator="consumer.alerts.rules:validate_rule_file",
            reader="consumer.alerts.rules:read_rule_yaml",
        ),
    )
}

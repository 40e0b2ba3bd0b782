"""The one Jinja2 environment for every HTML page the collector makes (the status page now, the
monthly report's HTML later): templates in ``collector/http/templates/``, every value escaped
unless a template says otherwise, and an undefined name an error rather than an empty string.
Pages extend ``base.html``."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

ENV = Environment(
    loader=PackageLoader("collector.http", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context: Any) -> str:
    return ENV.get_template(template).render(**context)

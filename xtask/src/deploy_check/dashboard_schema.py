"""Checks a Grafana dashboard (JSON) against Grafana's own schema, as the Grafana Foundation SDK
generates it from Grafana's CUE kinds: decodes it into the SDK's typed models (with the panel and
query plugins Grafana ships) and fails on every field the schema does not know, every value of the
wrong type or outside its enumeration, and every panel type or query type Grafana has no schema
for. Run by `cargo xtask test` with the venv's Python: python dashboard_schema.py FILE."""

import enum
import json
import sys
import typing

from grafana_foundation_sdk.cog import plugins, runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel


def unknown_fields(source, decoded, path):
    """Fields of `source` that decoding dropped or changed."""
    if isinstance(source, dict):
        if not isinstance(decoded, dict):
            yield f"{path}: decoded as {type(decoded).__name__}"
            return
        for key, value in source.items():
            if key not in decoded:
                yield f"{path}.{key}: not in Grafana's schema"
            else:
                yield from unknown_fields(value, decoded[key], f"{path}.{key}")
    elif isinstance(source, list):
        if not isinstance(decoded, list) or len(source) != len(decoded):
            yield f"{path}: the list changed when decoded"
            return
        for index, (item, back) in enumerate(zip(source, decoded)):
            yield from unknown_fields(item, back, f"{path}[{index}]")
    elif source != decoded:
        yield f"{path}: {source!r} decoded as {decoded!r}"


def wrong_types(model, path):
    """Attributes of a decoded model whose value does not fit the annotated type."""
    for name, hint in typing.get_type_hints(type(model)).items():
        yield from wrong_value(getattr(model, name, None), hint, f"{path}.{name}")


def wrong_value(value, hint, path):
    if value is None:
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            yield from wrong_value(value, options[0], path)
        elif hasattr(value, "to_json"):
            yield from wrong_types(value, path)
    elif origin is typing.Literal:
        if value not in args:
            yield f"{path}: {value!r} is none of {list(args)}"
    elif origin is list:
        if not isinstance(value, list):
            yield f"{path}: {value!r} is not a list"
        else:
            for index, item in enumerate(value):
                yield from wrong_value(item, args[0], f"{path}[{index}]")
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        if value not in {member.value for member in hint}:
            yield f"{path}: {value!r} is none of {[m.value for m in hint]}"
    elif hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            yield f"{path}: {value!r} is not a number"
    elif hint in (str, bool):
        if not isinstance(value, hint):
            yield f"{path}: {value!r} is not a {hint.__name__}"
    elif hasattr(value, "to_json"):
        yield from wrong_types(value, path)


def unknown_plugins(dashboard):
    for panel in dashboard.panels or []:
        if not isinstance(panel, Panel):
            continue
        if runtime.panelcfg_config(panel.type_val) is None:
            yield f"panel {panel.title!r}: Grafana has no panel type {panel.type_val!r}"
        for target in panel.targets or []:
            if isinstance(target, runtime.UnknownDataquery):
                yield f"panel {panel.title!r}: a query of no known data source type"


def main(path):
    plugins.register_default_plugins()
    with open(path, encoding="utf-8") as file:
        source = json.load(file)
    dashboard = Dashboard.from_json(source)
    decoded = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    problems = [
        *unknown_fields(source, decoded, "dashboard"),
        *wrong_types(dashboard, "dashboard"),
        *unknown_plugins(dashboard),
    ]
    for problem in problems:
        print(f"{path}: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

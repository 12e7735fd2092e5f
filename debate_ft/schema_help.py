"""`python -m debate_ft <command> --help`: every setting of the schema with its default, choices and help.

The text is made from the config dataclasses' fields (their `help` and `choices` metadata), so what `--help`
says cannot drift from what is validated. It is Hydra's help template (config.py stores it as hydra/help), so
Hydra still fills in the config groups and the config composed from the overrides given.
"""

from __future__ import annotations

import textwrap
import typing
from dataclasses import MISSING, Field, fields, is_dataclass

WIDTH = 100
HEADER = """usage: python -m debate_ft <command> +dataset=<name> [key=value ...]
Every setting below is a Hydra override (key=value); groups pick a YAML file from conf/ (group=option).

== Config groups ==
dataset and experiment are added: +dataset=<name>, +experiment=<name>; +dataset@eval_dataset=<name> tests
`iterate` on another dataset. The others are replaced: model=<name>, backend=<name>.

$APP_CONFIG_GROUPS

== Settings: key=default (choices), what it does ==
"""
FOOTER = """
== The config of this command line (the schema with conf/ and the overrides given) ==
$CONFIG"""


def listed(choices: typing.Sequence[str]) -> str:
    """'a, b or c': how messages and help name a field's choices."""
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def settings_help(schema: type) -> str:
    """One block per section of `schema` (a dataclass of dataclasses), then its plain top-level settings."""
    blocks, shown, top = [], {}, []
    for spec, section in _typed_fields(schema):
        if section is None:
            top.append(_entry(spec.name, spec))
        elif section in shown:  # eval_dataset is a second dataset: its keys are dataset's
            blocks.append(textwrap.fill(f"{spec.name}: {spec.metadata['help']} Same keys as {shown[section]}.", WIDTH))
        else:
            shown[section] = spec.name
            entries = [_entry(f"{spec.name}.{inner.name}", inner) for inner in fields(section)]
            blocks.append("\n".join([textwrap.fill(f"{spec.name}: {spec.metadata['help']}", WIDTH), *entries]))
    blocks.append("\n".join(["top level:", *top]))
    return "\n\n".join(blocks) + "\n"


def help_node(schema: type) -> dict:
    """Hydra's hydra/help config: our header and footer around the settings of `schema`."""
    # string.Template reads `$` in the settings as a placeholder, and OmegaConf reads `${` as an interpolation
    settings = settings_help(schema).replace("$", "$$")
    assert "${" not in settings, "help text must not hold '${'"
    return {"app_name": "debate_ft", "header": "", "footer": "", "template": HEADER + settings + FOOTER}


def _typed_fields(schema: type) -> list[tuple[Field, type | None]]:
    """Each field with the config dataclass it holds (Optional[DatasetConfig] -> DatasetConfig), else None."""
    hints = typing.get_type_hints(schema)
    found = []
    for spec in fields(schema):
        kinds = typing.get_args(hints[spec.name]) or (hints[spec.name],)
        found.append((spec, next((kind for kind in kinds if is_dataclass(kind)), None)))
    return found


def _entry(key: str, spec: Field) -> str:
    default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
    choices = spec.metadata.get("choices")
    head = f"  {key}={_shown(default)}" + (f" ({'|'.join(choices)})" if choices else "")
    body = textwrap.fill(spec.metadata["help"], WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return f"{head}\n{body}"


def _shown(value) -> str:
    """A default as one would type it in an override."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return "''" if value == "" else str(value)

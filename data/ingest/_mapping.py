"""Column mappings: how an export's files and columns become crm.* rows (YAML)."""

from __future__ import annotations

import fnmatch
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from revstack.data.errors import ContractError

__all__ = ["Mapping", "ObjectMap", "load_mapping", "TARGETS", "FORMATS", "YES", "NO", "CONSENT"]

FORMATS = ("salesforce", "hubspot", "maven")
# target object -> (table, primary key)
TARGETS = {
    "accounts": ("crm.accounts", "account_id"),
    "contacts": ("crm.contacts", "contact_id"),
    "opportunities": ("crm.opportunities", "opportunity_id"),
    "opportunity_history": ("crm.opportunity_history", "history_id"),
    "users": ("crm.users", "user_id"),
    "activities": ("crm.activities", "activity_id"),
}
Kind = Literal[
    "string",
    "integer",
    "number",
    "amount",
    "percent",
    "millions",
    "date",
    "timestamp",
    "boolean",
    "present",
    "slug",
]
# How a yes/no cell may be spelled (any case, surrounding spaces ignored). Anything else
# is refused rather than guessed: an opt-out read as "no" would let people be contacted.
YES = ("true", "yes", "y", "1", "t")
NO = ("false", "no", "n", "0", "f")
# The targets that say whether a person may be contacted.
CONSENT = ("email_opt_out", "do_not_contact")


class ObjectMap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[str]
    required: bool = False
    columns: dict[str, str]
    required_columns: list[str] = []
    types: dict[str, Kind] = {}
    values: dict[str, dict[str, str]] = {}
    defaults: dict[str, Any] = {}
    derive: dict[str, dict[str, str]] = {}
    null_ids: list[str] = []
    ignore: list[str] = []
    # Consent targets for which a value that is neither a yes nor a no counts as opted
    # out, instead of refusing the import.
    unknown_is_opted_out: list[str] = []

    @model_validator(mode="after")
    def _opt_outs_are_yes_no(self) -> ObjectMap:
        for target in self.unknown_is_opted_out:
            if target not in CONSENT or self.types.get(target) != "boolean":
                raise ValueError(
                    f"unknown_is_opted_out names {target!r}; it takes consent targets "
                    f"({', '.join(CONSENT)}) typed boolean in this object"
                )
        return self

    def ignored(self, column: str) -> bool:
        return any(fnmatch.fnmatchcase(column, p) for p in self.ignore)


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str
    objects: dict[
        Literal[
            "accounts", "contacts", "opportunities", "opportunity_history", "users", "activities"
        ],
        ObjectMap,
    ]
    ignore_files: list[str] = []


def load_mapping(fmt: str, path: Path | None = None) -> Mapping:
    """The shipped mapping for ``fmt``, or a user's file; errors name file and key path."""
    if path is None:
        if fmt not in FORMATS:
            raise ContractError(
                fmt,
                "format",
                f"unknown format {fmt!r}; use one of {', '.join(FORMATS)} or pass --mapping",
            )
        text = (resources.files("revstack.data.mappings") / f"{fmt}.yaml").read_text(
            encoding="utf-8"
        )
        where = f"data/mappings/{fmt}.yaml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContractError(
                str(path), "(file)", f"cannot read mapping: {exc.strerror}"
            ) from exc
        where = str(path)
    try:
        return Mapping.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ContractError(where, "(file)", f"not valid YAML: {exc}") from exc
    except ValidationError as exc:
        e = exc.errors()[0]
        key = ".".join(str(p) for p in e["loc"])
        problem = f"unknown field {e['loc'][-1]!r}" if e["type"] == "extra_forbidden" else e["msg"]
        raise ContractError(where, key, problem) from exc

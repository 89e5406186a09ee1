"""Layer 1, the data foundation: the warehouse, importers, generator, audit."""

from data.errors import (
    ContractError,
    InputError,
    Problem,
    RevstackError,
    SchemaVersionError,
    WarehouseBusyError,
    WarehouseError,
)
from data.warehouse import LATEST_VERSION, Warehouse, default_db_path

__all__ = [
    "LATEST_VERSION",
    "ContractError",
    "InputError",
    "Problem",
    "RevstackError",
    "SchemaVersionError",
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseError",
    "default_db_path",
]

"""Layer 1, the data foundation: the warehouse, importers, generator, audit."""

from revstack.data.errors import (
    ContractError,
    InputError,
    Problem,
    RevstackError,
    SchemaVersionError,
    WarehouseBusyError,
    WarehouseError,
)
from revstack.data.warehouse import LATEST_VERSION, Warehouse, default_db_path

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

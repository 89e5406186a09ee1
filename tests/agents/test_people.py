"""Who may change roles: the first admin only into an empty warehouse, never the last
admin out of it."""

from __future__ import annotations

import pytest

from revstack.agents.engine import EngineError, add_person, people
from revstack.data.warehouse import Warehouse


def test_the_last_admin_can_be_neither_demoted_nor_replaced_by_a_stranger(wh: Warehouse) -> None:
    add_person(wh, "ana", "admin", by="ana")  # the first person, into an empty warehouse
    add_person(wh, "vic", "viewer", by="ana")
    with pytest.raises(EngineError, match="last admin"):
        add_person(wh, "ana", "viewer", by="ana")
    # with an admin in place, nobody adds themselves as one
    with pytest.raises(EngineError, match="needs the admin role"):
        add_person(wh, "vic", "admin", by="vic")
    with pytest.raises(EngineError, match="not a known person"):
        add_person(wh, "mallory", "admin", by="mallory")
    # a second admin first, then the first may step down
    add_person(wh, "bo", "admin", by="ana")
    add_person(wh, "ana", "reviewer", by="ana")
    with pytest.raises(EngineError, match="last admin"):
        add_person(wh, "bo", "viewer", by="bo")
    with wh.connect() as con:
        roles = dict(people(con).select("name", "role").iter_rows())
    assert roles == {"ana": "reviewer", "bo": "admin", "vic": "viewer"}

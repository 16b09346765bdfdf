"""The interfaces methods are built from (methods/base.py): every drafter, tree drafter and schedule the methods
use has each method its protocol declares, with the same parameters, so a new drafter can be written against the
protocol alone."""

import dataclasses
import inspect

import pytest

from playground.methods.base import Drafter, DraftSchedule, TreeDrafter
from playground.methods.copyspec import CopySpec, RollingHashIndex
from playground.methods.prompt_lookup import LookupDrafter
from playground.methods.schedules import make_schedule
from playground.methods.self_speculative import SelfDrafter
from playground.methods.speculative import ModelDrafter
from playground.methods.token_recycling import RecyclingDrafter
from playground.methods.tree_speculative import ModelTreeDrafter


def copier() -> CopySpec:
    return CopySpec(RollingHashIndex(3), span=8, min_span=2, max_span=32, fallback=None, gamma=4)


IMPLEMENTATIONS = [
    (Drafter, ModelDrafter), (Drafter, SelfDrafter), (Drafter, LookupDrafter), (Drafter, CopySpec),
    (TreeDrafter, ModelTreeDrafter), (TreeDrafter, RecyclingDrafter),
    (DraftSchedule, type(make_schedule(4))), (DraftSchedule, CopySpec),
]


def declared(protocol) -> list[str]:
    return [name for name, value in vars(protocol).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))]


@pytest.mark.parametrize("protocol,cls", IMPLEMENTATIONS, ids=lambda x: x.__name__)
def test_each_implementation_has_its_protocols_methods_with_the_same_parameters(protocol, cls):
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name in declared(protocol):
        wanted = getattr(protocol, name)
        assert hasattr(cls, name) or name in fields, f"{cls.__name__} lacks {protocol.__name__}.{name}"
        if isinstance(wanted, property):
            continue  # a property, a class attribute or a dataclass field: all read the same
        given = getattr(cls, name)
        assert list(inspect.signature(given).parameters) == list(inspect.signature(wanted).parameters), name


@pytest.mark.parametrize("schedule", [make_schedule(4, "heuristic"), copier()], ids=["schedule", "copyspec"])
def test_schedules_are_draft_schedules_at_run_time(schedule):
    assert isinstance(schedule, DraftSchedule)
    assert isinstance(schedule.gamma, int) and schedule.update(4, 4) is not None


def test_a_class_without_a_protocol_method_is_not_one():
    class Half:
        def propose(self, committed, gamma, gen, stop): ...

    assert not isinstance(Half(), Drafter) and isinstance(LookupDrafter(3, 1), Drafter)

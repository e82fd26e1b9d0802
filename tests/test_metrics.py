"""leaklab.metrics: metric names built and taken apart in one place, and the
verdicts as string enums that read, compare and serialise as their values."""

from __future__ import annotations

import json
import pickle

import pytest

from leaklab import metrics
from leaklab.metrics import LIFECYCLE_KINDS, ZERO_FILL_KINDS, Change, ItemVerdict, Kind, Metric, Verdict

ENUMS = (Kind, Verdict, ItemVerdict, Change)


# -- names ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("subject", ["ServiceContext", "handler.client_connections", "Session._finish_init",
                                     "app.state['a:b']", ""])
def test_name_and_parse_round_trip(kind, subject):
    # GIVEN a metric name built from a kind and a subject (one with a colon in it too)
    m = metrics.name(kind, subject)
    # WHEN it is taken apart
    parsed = metrics.parse(m)
    # THEN the same kind and subject come back, and the name is rebuilt as it was
    assert parsed == Metric(kind, subject)
    assert str(parsed) == m
    assert metrics.kind_of(m) is kind and metrics.subject_of(m) == subject
    assert metrics.namespace(m) == kind.value
    assert metrics.is_kind(m, kind) and not metrics.is_kind(m, *(k for k in Kind if k is not kind))


def test_name_is_kind_colon_subject():
    # GIVEN a kind as an enum or as its string WHEN named THEN "<kind>:<subject>"
    assert metrics.name(Kind.TYPE, "ServiceContext") == "type:ServiceContext"
    assert metrics.name("container", "handler.client_connections") == "container:handler.client_connections"
    # AND an unknown kind is refused rather than making a name nothing parses
    with pytest.raises(ValueError):
        metrics.name("nope", "x")


@pytest.mark.parametrize("plain", ["tasks", "rss_mb", "gc_objects", "cache_bytes", "latency_end_ms", "nope:x", ":x"])
def test_plain_resources_have_no_kind(plain):
    # GIVEN a plain resource, or a name whose head is no known kind
    parsed = metrics.parse(plain)
    # THEN it has no kind, and its subject (and string) is the whole name
    assert parsed == Metric(None, plain)
    assert str(parsed) == plain and metrics.subject_of(plain) == plain
    assert metrics.kind_of(plain) is None and not metrics.is_kind(plain, *Kind)


def test_namespace_of_plain_resources_is_the_name():
    # thresholds are looked up by it: a plain resource is its own namespace
    assert metrics.namespace("rss_mb") == "rss_mb"
    assert metrics.namespace("task:Main.run") == "task"


def test_kind_families():
    # the zero-filled families count instances; the lifecycle ones count calls
    # and the milliseconds a function held the loop (absent from a cycle: 0 ms)
    assert set(ZERO_FILL_KINDS) == {Kind.TYPE, Kind.TASK, Kind.CONTAINER, Kind.TIME}
    assert Kind.LIFECYCLE in LIFECYCLE_KINDS and Kind.EXPECTED in LIFECYCLE_KINDS
    assert not set(ZERO_FILL_KINDS) & set(LIFECYCLE_KINDS)
    assert all(k.value.startswith(("lifecycle", "expected")) for k in LIFECYCLE_KINDS)


# -- enums --------------------------------------------------------------------------


@pytest.mark.parametrize("member", [m for enum in ENUMS for m in enum], ids=str)
def test_enum_members_are_their_values(member):
    value = member.value
    # equal to the string, hashed alike: a dict keyed by the string finds it, and back
    assert member == value and value == member and isinstance(member, str)
    assert hash(member) == hash(value)
    assert {value: 1}[member] == 1 and {member: 1}[value] == 1
    assert type(member)(value) is member
    # str(), format() and %: the value (Python 3.10's (str, Enum) gave "Verdict.LEAK" for str())
    assert str(member) == value
    assert f"{member}" == value and format(member, "") == value
    assert f"{member:>20}" == f"{value:>20}"
    assert "%s" % member == value
    assert member + "!" == value + "!"
    # JSON writes the value, and reads back as the plain string
    assert json.dumps(member) == json.dumps(value)
    assert json.loads(json.dumps({"verdict": member})) == {"verdict": value}
    # and it survives pickling as itself
    assert pickle.loads(pickle.dumps(member)) is member


def test_verdict_values():
    # the values saved runs and notebooks' data hold
    assert [v.value for v in Verdict] == ["leak", "transient", "normal", "none", "insufficient", "slows",
                                          "inconclusive"]
    assert [v.value for v in ItemVerdict] == ["confirmed", "transient", "ruled_out", "not_applicable", "inconclusive"]
    assert Change("can't tell") is Change.CANT_TELL and Change("partly fixed") is Change.PARTLY_FIXED


def test_an_unknown_verdict_is_refused():
    with pytest.raises(ValueError):
        Verdict("leaks")

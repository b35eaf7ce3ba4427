"""Trim & respond (G36 §5.1.14) as a pure function and as a clocked loop."""

from __future__ import annotations

import pytest

from twin.trim_respond import TrimRespond, TrimRespondLoop, trim_respond

# G36's chilled-water plant reset defaults, as fractions
P = TrimRespond(
    sp0=1.0, spmin=0.0, spmax=1.0, td=900.0, t=300.0, i=2, sptrim=-0.02, spres=0.03, spres_max=0.07
)


def test_without_more_than_i_requests_the_setpoint_is_trimmed() -> None:
    assert trim_respond(0.5, 0, P) == pytest.approx(0.48)
    assert trim_respond(0.5, 2, P) == pytest.approx(0.48)  # I = 2 requests are ignored


def test_requests_over_i_respond_by_spres_each_net_of_the_trim() -> None:
    assert trim_respond(0.5, 3, P) == pytest.approx(0.5 - 0.02 + 0.03)
    assert trim_respond(0.5, 4, P) == pytest.approx(0.5 - 0.02 + 0.06)


def test_the_net_change_of_one_period_is_limited_to_spres_max() -> None:
    assert trim_respond(0.5, 20, P) == pytest.approx(0.57)


def test_the_setpoint_stays_within_spmin_and_spmax() -> None:
    assert trim_respond(0.01, 0, P) == 0.0
    assert trim_respond(0.99, 10, P) == 1.0


def test_negative_response_direction_works_the_same() -> None:
    # e.g. a supply-temperature set point: requests lower it, quiet periods raise it
    q = TrimRespond(
        sp0=12, spmin=7, spmax=14, td=0, t=60, i=0, sptrim=0.2, spres=-0.5, spres_max=1.0
    )
    assert trim_respond(10.0, 0, q) == pytest.approx(10.2)
    assert trim_respond(10.0, 1, q) == pytest.approx(9.7)
    assert trim_respond(10.0, 5, q) == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"sp0": 2.0}, "SP0"),
        ({"sptrim": 0.02}, "opposite signs"),
        ({"t": 0.0}, "T must be"),
        ({"spres_max": -1.0}, "magnitude"),
    ],
)
def test_bad_parameters_are_refused(kw: dict[str, float], msg: str) -> None:
    base = dict(
        sp0=1.0,
        spmin=0.0,
        spmax=1.0,
        td=900.0,
        t=300.0,
        i=2,
        sptrim=-0.02,
        spres=0.03,
        spres_max=0.07,
    )
    with pytest.raises(ValueError, match=msg):
        TrimRespond(**{**base, **kw})  # type: ignore[arg-type]


def test_loop_holds_sp0_for_td_then_updates_once_per_period() -> None:
    loop = TrimRespondLoop(P)
    for _ in range(89):  # 890 s < Td
        assert loop.step(0, 10.0) == 1.0
    sps = [loop.step(0, 10.0) for _ in range(61)]  # to 1500 s
    # first trim one period after the delay (1200 s), the next at 1500 s
    assert sps[0] == 1.0
    assert sorted(set(sps), reverse=True) == pytest.approx([1.0, 0.98, 0.96])
    assert sps.index(pytest.approx(0.98)) == 30  # 900 + 300 s


def test_loop_returns_to_sp0_while_its_device_is_off() -> None:
    loop = TrimRespondLoop(P)
    for _ in range(1500):
        loop.step(0, 10.0)
    assert loop.sp < 0.5
    assert loop.step(0, 10.0, on=False) == 1.0
    assert loop.step(0, 10.0) == 1.0  # the delay starts again

"""Component physics against published or hand-computed reference numbers (pvlib style)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from perfmodel import air, chiller, kpi, liquid, power, pumps, tower
from perfmodel.curves_data import CHILLERS, DEFAULT_CHILLER


# ---- cooling tower ---------------------------------------------------------------------
def test_cooltools_reference_condition() -> None:
    # EnergyPlus Engineering Reference, "Variable Speed Cooling Towers": the CoolTools
    # correlation's reference condition is 25.6 °C (78 °F) wet bulb, 35 °C (95 °F) in,
    # 29.4 °C (85 °F) out, i.e. approach 7 °F = 3.889 K at FRair = FRwater = 1.
    twb = (78.0 - 32.0) * 5 / 9
    rng = 10.0 * 5 / 9
    assert_allclose(tower.approach_cooltools(twb, rng, 1.0, 1.0), 7.0 * 5 / 9, atol=0.01)


def test_tower_approach_falls_with_fan_speed_and_rises_with_range() -> None:
    fr = np.linspace(0.2, 1.0, 9)
    ap = tower.approach_cooltools(24.0, 5.0, 1.0, fr)
    assert np.all(np.diff(ap) < 0)
    assert tower.approach_cooltools(24.0, 8.0, 1.0, 1.0) > tower.approach_cooltools(
        24.0, 4.0, 1.0, 1.0
    )


def test_speed_for_leaving_temp_inverts_the_correlation() -> None:
    fr = tower.speed_for_leaving_temp(28.0, 22.0, 5.0, 1.0)
    assert 0.2 < fr < 1.0
    assert_allclose(tower.leaving_water_temp(22.0, 5.0, 1.0, fr), 28.0, atol=1e-6)
    # unreachable target: full speed
    assert tower.speed_for_leaving_temp(22.5, 22.0, 5.0, 1.0) == pytest.approx(1.0)


def test_tower_validity_range() -> None:
    ok = tower.in_range([20.0, 30.0, 20.0], [5.0, 5.0, 5.0], [4.0, 4.0, 4.0], [1.0, 1.0, 0.5])
    assert ok.tolist() == [True, False, False]


def test_wet_bulb_against_published_value() -> None:
    # Stull (2011), J. Appl. Meteor. Climatol. 50: 20 °C and 50 % RH → Tw ≈ 13.7 °C at sea level
    assert_allclose(tower.wet_bulb(20.0, 50.0), 13.7, atol=0.1)
    # saturated air: wet bulb = dry bulb
    assert_allclose(tower.wet_bulb(25.0, 100.0), 25.0, atol=0.01)
    assert tower.wet_bulb([30.0, 30.0], [20.0, 80.0]).shape == (2,)


def test_tower_fan_cube_law() -> None:
    assert_allclose(tower.fan_power(45.0, 0.5), 45.0 / 8)


# ---- pumps and fans ---------------------------------------------------------------------
def test_affinity_laws() -> None:
    assert_allclose(pumps.affinity_flow(60.0, 0.5), 30.0)
    assert_allclose(pumps.affinity_head(200.0, 0.5), 50.0)
    assert_allclose(pumps.affinity_power(30.0, 0.5), 3.75)
    assert_allclose(pumps.affinity_power(30.0, [1.0, 0.8]), [30.0, 15.36])


def test_vfd_efficiency_bernier_bourret() -> None:
    # 0.5087 + 1.283 − 1.42 + 0.5834 = 0.9551 at full speed
    assert_allclose(pumps.vfd_efficiency(1.0), 0.9551, atol=1e-12)
    assert pumps.vfd_efficiency(0.3) < pumps.vfd_efficiency(0.6) < pumps.vfd_efficiency(1.0)


def test_electric_power_includes_motor_and_drive() -> None:
    p = pumps.electric_power(30.0, 1.0, motor_full_load_efficiency=0.95)
    assert 30.0 / 0.95 / 0.9551 * 0.999 < p < 30.0 / 0.95 / 0.9551 * 1.001
    assert pumps.electric_power(30.0, 0.0) == 0.0
    # at half speed the cube law dominates: well under half the full-speed power
    assert pumps.electric_power(30.0, 0.5) < 0.25 * p


# ---- chiller ------------------------------------------------------------------------------
def test_embedded_default_chiller_curves_by_hand() -> None:
    # Carrier 19XR 1407kW/6.04COP/VSD CAPFT coefficients as printed in Chillers.idf
    ch = DEFAULT_CHILLER
    c = ch.capft.coefficients
    x, y = 6.67, 29.44
    by_hand = c[0] + c[1] * x + c[2] * x * x + c[3] * y + c[4] * y * y + c[5] * x * y
    assert_allclose(chiller.capft(ch, x, y), by_hand, rtol=0, atol=1e-12)
    # and the curve is normalised at the reference point (CoolTools sets it to ≈1)
    assert_allclose(chiller.capft(ch, ch.ref_chw_leaving_c, ch.ref_cond_entering_c), 1.0, atol=0.03)
    assert_allclose(chiller.eirft(ch, ch.ref_chw_leaving_c, ch.ref_cond_entering_c), 1.0, atol=0.03)
    assert_allclose(chiller.eirfplr(ch, 1.0), 1.0, atol=0.03)


@pytest.mark.parametrize("name", sorted(CHILLERS))
def test_chiller_cop_at_reference_is_the_rated_cop(name: str) -> None:
    ch = CHILLERS[name]
    q_ref = (ch.ref_capacity_w or 0) / 1000
    cap = q_ref * chiller.capft(ch, ch.ref_chw_leaving_c, ch.ref_cond_entering_c)
    r = chiller.chiller_performance(ch, cap, ch.ref_chw_leaving_c, ch.ref_cond_entering_c)
    assert_allclose(r.cop, ch.ref_cop, rtol=0.04)


def test_chiller_energy_balance_and_part_load() -> None:
    ch = DEFAULT_CHILLER
    loads = np.array([200.0, 700.0, 1200.0])
    r = chiller.chiller_performance(ch, loads, 7.0, 29.0)
    assert_allclose(r.cond_kw, loads + r.power_kw, rtol=1e-12)  # Q_cond = Q_evap + P
    assert np.all(np.diff(r.power_kw) > 0)
    # warmer condenser water costs power, warmer chilled water saves it
    hot = chiller.chiller_performance(ch, 700.0, 7.0, 31.0).power_kw
    warm_chw = chiller.chiller_performance(ch, 700.0, 9.0, 29.0).power_kw
    assert hot > r.power_kw[1] > warm_chw


def test_chiller_cycling_below_min_plr_and_validity() -> None:
    ch = DEFAULT_CHILLER
    cap = (ch.ref_capacity_w or 0) / 1000 * float(chiller.capft(ch, 7.0, 25.0))
    low = chiller.chiller_performance(ch, 0.05 * cap, 7.0, 25.0)
    at_min = chiller.chiller_performance(ch, ch.min_plr * cap, 7.0, 25.0)
    # below min PLR the chiller cycles: power scales with the load fraction of min PLR
    assert_allclose(low.power_kw, at_min.power_kw * 0.05 / ch.min_plr, rtol=1e-9)
    assert not bool(low.valid)
    assert not bool(chiller.chiller_performance(ch, 0.6 * cap, 15.0, 25.0).valid)
    assert bool(chiller.chiller_performance(ch, 0.6 * cap, 7.0, 25.0).valid)


def test_chiller_power_outside_the_curves_is_held_at_their_edge() -> None:
    """A loop at 26 °C after a restart is far past the EIRFT data: the curve is evaluated
    at its edge (as EnergyPlus does), never extrapolated to a negative power."""
    ch = DEFAULT_CHILLER
    leave = np.array([ch.eirft.x_max, 20.0, 26.0, 40.0])
    r = chiller.chiller_performance(ch, 700.0, leave, 29.0)
    assert np.all(r.power_kw > 0)
    assert_allclose(r.power_kw, r.power_kw[0], rtol=1e-12)  # all clipped to the edge
    assert not np.any(r.valid[1:])


# ---- liquid cooling -------------------------------------------------------------------------
def test_die_temperature_by_hand() -> None:
    # 30 + 700/(2·0.02·4180) + 700·0.04 = 30 + 4.18660 + 28 = 62.18660 °C
    assert_allclose(liquid.die_temperature(30.0, 700.0, 0.02, 0.04), 62.186603, atol=1e-5)


def test_coolant_energy_balance() -> None:
    # 800 kW in 24 L/s of water: ΔT = 800e3 / (24·0.997·4180) = 7.998 K
    assert_allclose(
        liquid.coolant_return_temp(30.0, 800.0, 24.0) - 30.0, 800e3 / (24 * 0.997 * 4180)
    )


def test_thermal_resistance_rises_when_flow_falls() -> None:
    assert_allclose(liquid.thermal_resistance(1.0, 0.02, 0.02), 0.04)
    assert_allclose(liquid.thermal_resistance(0.5, 0.02, 0.02), 0.02 + 0.02 * 2**0.8)


def test_dvfs_cap_round_trip() -> None:
    caps = np.array([0.5, 0.7, 0.9])
    f = liquid.clock_for_power_cap(caps, 1.0)
    assert_allclose(liquid.gpu_power(f, 1.0), caps)
    assert liquid.clock_for_power_cap(np.inf, 1.0) == 1.0
    assert liquid.clock_for_power_cap(0.1, 1.0) == 0.0  # below idle power
    # cube-ish law: 80 % power keeps far more than 80 % of the clock
    assert liquid.clock_for_power_cap(0.8, 1.0) > 0.85


# ---- air -------------------------------------------------------------------------------------
def test_rack_inlet_recirculation_by_hand() -> None:
    assert_allclose(air.rack_inlet_temp(20.0, 12.0, 0.1), 20.0 + 0.1 / 0.9 * 12.0)
    assert air.recirculation_share(10.0, 10.0, 0.05) == pytest.approx(0.05)
    assert air.recirculation_share(5.0, 10.0, 0.0) == pytest.approx(0.5)


def test_air_delta_t_energy_balance() -> None:
    # 100 kW in 10 m³/s of air: 100e3 / (1.2·10·1006) = 8.283 K
    assert_allclose(air.air_delta_t(100.0, 10.0), 100e3 / (1.2 * 10 * 1006))


def test_ashrae_envelope() -> None:
    assert air.RECOMMENDED_C == (18.0, 27.0)
    assert air.A1_ALLOWABLE_C == (15.0, 32.0)
    lo, hi = air.envelope_margins(28.0)
    assert hi == pytest.approx(-1.0) and lo == pytest.approx(10.0)
    assert air.supply_air_temp(18.0, 16.0, 5.0) == 21.0  # coil approach floor


# ---- power chain -------------------------------------------------------------------------------
def test_peukert_by_hand() -> None:
    # 100 Ah at the 20 h rate, k = 1.2, 10 A: t = 20·(100/(10·20))^1.2 = 20·0.5^1.2 = 8.7055 h
    assert_allclose(power.peukert_runtime_h(10.0, 100.0, 20.0, 1.2), 20 * 0.5**1.2, rtol=1e-12)
    assert_allclose(power.peukert_runtime_h(10.0, 100.0, 20.0, 1.2), 8.7055, atol=1e-4)
    # at the rated current the rated time comes back
    assert_allclose(power.peukert_runtime_h(5.0, 100.0, 20.0, 1.3), 20.0)


def test_transformer_losses_by_hand() -> None:
    # P0 + Pk·(S/Sr)² = 3 + 20·0.5² = 8 kW
    assert_allclose(power.transformer_loss(1250.0, 2500.0, 3.0, 20.0), 8.0)


def test_ups_efficiency_by_hand() -> None:
    # x/(x + a + b·x + c·x²) = 0.5/(0.5 + 0.013 + 0.003 + 0.005) = 0.959693
    assert_allclose(power.ups_efficiency(0.5), 0.5 / 0.521, rtol=1e-12)
    assert power.ups_efficiency(0.1) < power.ups_efficiency(0.5)
    assert_allclose(power.ups_loss(750.0, 1500.0), 1500 * 0.021)


def test_pdu_loss_square_law() -> None:
    assert_allclose(power.pdu_loss(800.0, 800.0, 0.015), 12.0)
    assert_allclose(power.pdu_loss(400.0, 800.0, 0.015), 3.0)


# ---- KPIs ----------------------------------------------------------------------------------------
def test_kpis() -> None:
    assert_allclose(kpi.KW_PER_TON, 3.516853, atol=1e-6)  # 12 000 Btu/h
    assert_allclose(kpi.pue(1500.0, 1000.0), 1.5)
    assert_allclose(kpi.kw_per_ton(100.0, 3.516852842 * 200), 0.5)
    assert_allclose(kpi.cop_from_kw_per_ton(0.6), 5.861421, atol=1e-5)
    assert_allclose(kpi.cop(700.0, 100.0), 7.0)

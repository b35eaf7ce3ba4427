"""Calibration against ESB telemetry, Guideline 14 metrics, the ESB importer, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import dataset_file

from agent.cli import main
from connectors.importers.esb import esb_site, read_esb
from perfmodel.calibrate import cv_rmse, fit_chiller, fit_tower, metrics, nmbe, predict_power
from perfmodel.curves_data import DEFAULT_CHILLER
from perfmodel.tower import approach_cooltools


def test_guideline14_metrics_by_hand() -> None:
    y = np.array([10.0, 12.0, 14.0])
    yhat = np.array([11.0, 12.0, 13.0])
    # residuals −1, 0, +1: RMSE (p=0) = sqrt(2/3); mean 12 → CV = 100·0.8165/12 = 6.804 %
    assert cv_rmse(y, yhat) == pytest.approx(100 * np.sqrt(2 / 3) / 12)
    assert nmbe(y, yhat) == pytest.approx(0.0)
    assert nmbe(y, y - 1.2) == pytest.approx(100 * 1.2 / 12)  # model under-predicts → positive
    assert cv_rmse(y, yhat, p=1) == pytest.approx(100 * np.sqrt(2 / 2) / 12)


def test_fit_recovers_a_known_chiller() -> None:
    rng = np.random.default_rng(3)
    ch = DEFAULT_CHILLER
    q = rng.uniform(300, 1300, 400)
    x = rng.uniform(5.0, 9.0, 400)
    y = rng.uniform(18.0, 30.0, 400)
    truth = predict_power(ch, q, x, y)
    fit = fit_chiller(q, x, y, truth, ref_capacity_kw=1406.6)
    assert fit.train.cv_rmse_pct < 0.5
    m = metrics(truth, fit.predict(q, x, y))
    assert abs(m.nmbe_pct) < 0.1


def test_fit_tower_recovers_reference_flows() -> None:
    rng = np.random.default_rng(5)
    twb = rng.uniform(12, 25, 300)
    r = rng.uniform(3, 7, 300)
    w = rng.uniform(0.6, 1.1, 300)
    a = rng.uniform(0.4, 1.0, 300)
    measured = approach_cooltools(twb, r, 1.15 * w, 0.9 * a)
    fit = fit_tower(twb, r, w, a, measured)
    assert fit.water_scale == pytest.approx(1.15, rel=1e-4)
    assert fit.air_scale == pytest.approx(0.9, rel=1e-4)
    assert fit.train.cv_rmse_pct < 1e-3


def test_read_esb_converts_units() -> None:
    df = read_esb(dataset_file("esb", "esb_chiller1.csv"))
    first = df.iloc[0]
    assert first["TempEvapOut"] == pytest.approx(278.64 - 273.15)  # K → °C
    assert first["Tons"] == pytest.approx(615.9018908124)  # W of cooling → kW
    assert first["PowChi"] == pytest.approx(98.3)  # W → kW
    assert first["FlowEvap"] == pytest.approx(1.818743799)  # m³/s → L/s
    assert first["PerChilLoad"] == pytest.approx(22.81448)  # fraction → %
    assert df.index.name == "ts" and df.attrs["units"]["Tons"] == "kW"
    site = esb_site(list(df.columns))
    assert "chiller.PowChi" in site.point_ids


def test_read_esb_bad_file_names_it(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from connectors.errors import ConfigError

    p = Path(str(tmp_path)) / "bad.csv"
    p.write_text("Time,PowChi\n2018-05-01 00:00:00,1\n")
    with pytest.raises(ConfigError, match=r"bad.csv: missing ESB columns"):
        read_esb(p)


def test_calibrate_esb_meets_target(capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_file("esb", "esb_chiller1.csv")
    rc = main(["calibrate", "esb", str(path), "--train-days", "14"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0
    assert last["cv_rmse_pct"] <= 10.0 and abs(last["nmbe_pct"]) <= 5.0
    assert last["points"] > 100
    # the physics form does at least as well as the plain regression
    assert last["cv_rmse_pct"] <= last["regression_cv_rmse_pct"]

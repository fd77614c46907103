"""Physics of the simulated world: weather generator and the true-flux process model."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from fluxcube import config
from fluxcube.simulate.network import load_network
from fluxcube.simulate.truth import (
    DEFAULT_SINK_SCALE,
    FOREST_PFTS,
    PFT_PARAMS,
    REFERENCE_YEARS,
    compare_with_cardamom,
    diagnose_r_ref,
    parameter_arrays,
    simulate_truth,
)
from fluxcube.simulate.weather import (
    DEFAULT_DROUGHT,
    day_length,
    generate_weather,
    potential_radiation,
)

DATA = config.data_dir()
IGBP = ["ENF", "EBF", "DNF", "DBF", "MF", "OSH", "CSH", "WSA", "SAV", "GRA", "WET", "CRO"]
# humid temperate points (lat, lon, PFT); their southern mirrors are added below
NORTH = [
    (48, 10, "DBF"),
    (45, -75, "DBF"),
    (52, -100, "ENF"),
    (50, 100, "ENF"),
    (46, -80, "MF"),
    (52, 30, "CRO"),
    (55, -110, "WET"),
    (47, -93, "GRA"),
]
SOUTH = [(-lat, lon + 7, pft) for lat, lon, pft in NORTH]


def need_data(subpath: str) -> None:
    """Skip unless the real sample data (``subpath`` in it) is there."""
    if not (DATA / subpath).exists():
        pytest.skip(f"real sample data not found at {DATA / subpath}; set FLUXCUBE_DATA")


@pytest.fixture(scope="module")
def points() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weather and truth (2005-2010) at the northern and southern test points."""
    lat, lon, pft = zip(*(NORTH + SOUTH), strict=True)
    return simulate_truth(lat, lon, pft, "2005-01-01", "2010-12-31")


# ---------------------------------------------------------------------------------------------
# solar geometry and weather
# ---------------------------------------------------------------------------------------------


def test_potential_radiation_geometry() -> None:
    equinox = potential_radiation(np.array([0.0]), np.array([80]))
    assert 425 < equinox[0] < 445  # ~ S0 / pi
    assert potential_radiation(np.array([80.0]), np.array([355]))[0] == 0.0  # polar night
    assert potential_radiation(np.array([80.0]), np.array([172]))[0] > 450  # polar day
    assert day_length(np.array([0.0]), np.array([1]))[0] == pytest.approx(12.0)
    assert day_length(np.array([-80.0]), np.array([172]))[0] == 0.0
    assert day_length(np.array([80.0]), np.array([172]))[0] == 24.0


@pytest.mark.parametrize("lat", [30.0, 45.0, 60.0])
def test_potential_radiation_hemispheres_mirror(lat: float) -> None:
    doy = np.arange(1, 366)
    north, south = potential_radiation(lat, doy), potential_radiation(-lat, doy)
    assert north.mean() == pytest.approx(south.mean(), rel=0.01)
    assert 160 <= doy[north.argmax()] <= 190 and 160 <= doy[south.argmin()] <= 190
    assert doy[south.argmax()] < 20 or doy[south.argmax()] > 340


@pytest.mark.parametrize(
    ("name", "lat"),
    [
        ("FLX_US-Wi7_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv", 46.6491),
        ("FLX_US-Prr_FLUXNET2015_SUBSET_DD_2010-2014_1-4.csv", 65.1237),
    ],
)
def test_potential_radiation_matches_fluxnet(name: str, lat: float) -> None:
    need_data(f"sites/fluxnet2015/{name}")
    real = pd.read_csv(DATA / "sites/fluxnet2015" / name, usecols=["TIMESTAMP", "SW_IN_POT"])
    doy = pd.to_datetime(real["TIMESTAMP"].astype(str), format="%Y%m%d").dt.day_of_year.to_numpy()
    ours = potential_radiation(lat, doy)
    day = real["SW_IN_POT"].to_numpy() > 20
    np.testing.assert_allclose(ours[day], real["SW_IN_POT"].to_numpy()[day], rtol=0.002)


def test_weather_ranges() -> None:
    lat = np.array([-40.0, -5.0, 0.0, 30.0, 50.0, 68.0])
    lon = np.array([-70.0, -60.0, 20.0, -110.0, 10.0, 25.0])
    w = generate_weather(lat, lon, "2010-01-01", "2011-12-31")
    assert w.tair.shape == (730, 6)
    assert np.all((w.rg >= 0) & (w.rg <= w.rpot + 1e-9))
    assert np.all(w.precip >= 0) and np.all(w.vpd >= 0)
    assert np.all((w.wai >= 0) & (w.wai <= 1)) and np.all(w.swc <= w.capacity + 1e-9)
    assert np.all((w.capacity >= 100) & (w.capacity <= 450))
    assert w.tair.min() > -60 and w.tair.max() < 50
    annual_precip = w.precip.sum(axis=0) / 2
    assert annual_precip[1] > 1200 and annual_precip[3] < 600  # Amazon wet, Arizona dry
    ds = w.to_dataset()
    assert ds["rg"].attrs["units"] == "W m-2" and ds["wai"].attrs["units"] == "1"


def test_weather_depends_only_on_location_and_date() -> None:
    """The same point sees the same weather whatever else is simulated (the tower = its grid cell)."""
    alone = generate_weather([51.0], [10.5], "2008-01-01", "2009-12-31")
    crowd = generate_weather([-3.0, 51.0, 40.0], [-60.0, 10.5, 100.0], "2005-01-01", "2010-12-31")
    keep = (crowd.dates >= "2008-01-01") & (crowd.dates <= "2009-12-31")
    for name in ("tair", "rg", "precip", "vpd"):
        np.testing.assert_allclose(getattr(alone, name)[:, 0], getattr(crowd, name)[keep, 1], rtol=1e-12)
    np.testing.assert_allclose(alone.wai[365:, 0], crowd.wai[keep, 1][365:], atol=1e-3)  # bucket spin-up


def test_anomalies_are_spatially_smooth() -> None:
    lat, lon = np.array([50.0, 50.1, 50.0, -30.0]), np.array([10.0, 10.1, 70.0, 130.0])
    w = generate_weather(lat, lon, "2010-01-01", "2012-12-31", drought=None)
    anomaly = w.tair - pd.DataFrame(w.tair).rolling(61, center=True, min_periods=1).mean().to_numpy()
    r = np.corrcoef(anomaly.T)
    assert r[0, 1] > 0.99  # 0.1 deg apart: the same weather
    assert abs(r[0, 2]) < 0.5 and abs(r[0, 3]) < 0.3  # far apart: independent


def test_drought_changes_only_its_region_and_season() -> None:
    lat, lon = np.array([51.0, 51.0, 40.0]), np.array([10.0, 60.0, -100.0])
    dry = generate_weather(lat, lon, "2011-01-01", "2012-12-31")
    normal = generate_weather(lat, lon, "2011-01-01", "2012-12-31", drought=None)
    summer = DEFAULT_DROUGHT.seasonal_weight(dry.dates) == 1.0
    warming = (dry.tair - normal.tair)[summer]
    np.testing.assert_allclose(warming[:, 0], DEFAULT_DROUGHT.warming)
    np.testing.assert_array_equal(dry.tair[:, 1:], normal.tair[:, 1:])  # outside Europe: unchanged
    np.testing.assert_array_equal(dry.tair[dry.dates.year == 2011], normal.tair[normal.dates.year == 2011])
    assert dry.wai[summer, 0].mean() < normal.wai[summer, 0].mean() - 0.2


# ---------------------------------------------------------------------------------------------
# the process model
# ---------------------------------------------------------------------------------------------


def test_parameter_table_covers_igbp_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    assert set(IGBP) <= set(PFT_PARAMS)
    prm = parameter_arrays(["SNO", "WAT", "CVM"])
    assert prm["lue"][0] == PFT_PARAMS["BSV"].lue and prm["lue"][2] == PFT_PARAMS["CRO"].lue
    with caplog.at_level(logging.WARNING):
        assert parameter_arrays(["XYZ"])["lue"][0] == PFT_PARAMS["GRA"].lue
    assert "XYZ" in caplog.text
    for p in PFT_PARAMS.values():
        assert 0 < p.lue < 3 and 0 < p.fapar_max <= 1 and p.k_gpp + p.sink_fraction < 1


def test_nee_is_reco_minus_gpp_with_plausible_ranges(points) -> None:
    _, fl = points
    np.testing.assert_array_equal(fl.nee, fl.reco - fl.gpp)
    assert np.all(fl.gpp >= 0) and np.all(fl.reco > 0)
    assert np.all((fl.fapar >= 0) & (fl.fapar <= 1))
    assert fl.gpp.max() < 25 and fl.reco.max() < 20  # g C m-2 d-1
    assert np.all(fl.r_ref > 0)


@pytest.mark.parametrize(
    ("rows", "months"), [(slice(0, len(NORTH)), {6, 7, 8}), (slice(len(NORTH), None), {12, 1, 2})]
)
def test_seasonal_cycle_sign_by_hemisphere(points, rows: slice, months: set[int]) -> None:
    """Northern temperate sites take up most in Jun-Aug, their southern mirrors in Dec-Feb."""
    _, fl = points
    monthly = pd.DataFrame(fl.nee[:, rows], index=fl.dates).groupby(fl.dates.month).mean()
    assert set(monthly.idxmin()) <= months
    assert (monthly.min() < 0).all() and (monthly.loc[[1, 7]].max() > monthly.min()).all()


def test_ecosystems_are_modest_sinks(points) -> None:
    """Default (shared) sink scale: weak sinks, as the global land needs; unscaled: FLUXNET-strength."""
    _, fl = points
    forests = [i for i, (*_, pft) in enumerate(NORTH + SOUTH) if pft in FOREST_PFTS]

    def annual(fluxes) -> pd.Series:
        return pd.DataFrame(fluxes.nee, index=fluxes.dates).groupby(fluxes.dates.year).sum().mean()  # g C m-2

    assert annual(fl).iloc[forests].between(-150, -5).all()
    assert (annual(fl) < 0).mean() >= 0.8
    lat, lon, pft = zip(*(NORTH + SOUTH), strict=True)
    _, strong = simulate_truth(lat, lon, pft, "2005-01-01", "2010-12-31", sink_scale=1.0)
    assert annual(strong).iloc[forests].between(-450, -50).all()
    assert (annual(strong) < annual(fl)).all()
    np.testing.assert_allclose(strong.sink_fraction, fl.sink_fraction / DEFAULT_SINK_SCALE)


@pytest.mark.parametrize("sink_scale", [DEFAULT_SINK_SCALE, 1.0])
def test_sink_fraction_holds_in_the_reference_climate(sink_scale: float) -> None:
    """Over the reference years (no drought) -mean(NEE) / mean(GPP) is the diagnosed sink fraction: the
    equilibrium R_ref = (1 - k_gpp - s) mean(GPP) / mean(factor), up to the 14-day GPP memory at the ends."""
    lat, lon, pft = zip(*(NORTH + SOUTH), strict=True)
    y0, y1 = REFERENCE_YEARS
    _, fl = simulate_truth(lat, lon, pft, f"{y0}-01-01", f"{y1}-12-31", drought=None, sink_scale=sink_scale)
    realised = -fl.nee.mean(axis=0) / fl.gpp.mean(axis=0)
    np.testing.assert_allclose(realised, fl.sink_fraction, atol=0.003)
    base = parameter_arrays(pft)["sink_fraction"]
    assert (
        (fl.sink_fraction >= 0.2 * base * sink_scale) & (fl.sink_fraction <= 1.8 * base * sink_scale)
    ).all()


def test_sink_scale_that_leaves_no_respiration_is_refused() -> None:
    for bad in (20.0, -0.1):  # DBF: 0.18 x (0.2..1.8) x 20 > 1 - k_gpp = 0.7; negative: no meaning
        with pytest.raises(ValueError, match=f"sink_scale {bad}"):
            diagnose_r_ref(np.array([50.0]), np.array([10.0]), ["DBF"], seed=0, sink_scale=bad)


def test_truth_does_not_depend_on_the_period() -> None:
    _, long = simulate_truth([46.0], [7.0], ["MF"], "2004-01-01", "2009-12-31")
    _, short = simulate_truth([46.0], [7.0], ["MF"], "2007-01-01", "2009-12-31")
    keep = long.dates >= "2008-01-01"
    np.testing.assert_allclose(long.nee[keep], short.nee[short.dates >= "2008-01-01"], atol=1e-3)


@pytest.fixture(scope="module")
def network():
    """Real FLUXNET2015 sites when the sample data is there, else the generated network."""
    return load_network(DATA)


def test_drought_turns_european_forests_towards_source(network) -> None:
    sites = network.sites
    core = DEFAULT_DROUGHT.spatial_weight(sites["lat"].to_numpy(), sites["lon"].to_numpy()) >= 0.99
    europe = sites[core & sites["classid"].isin(FOREST_PFTS).to_numpy()]
    assert len(europe) >= 3, f"too few European forest sites in the {network.network_source} network"
    _, fl = simulate_truth(europe["lat"], europe["lon"], europe["classid"], "2009-01-01", "2014-12-31")
    annual = pd.DataFrame(fl.nee, index=fl.dates, columns=europe["sitename"]).groupby(fl.dates.year).sum()
    drought_year = annual.loc[DEFAULT_DROUGHT.year]
    others = annual.drop(index=DEFAULT_DROUGHT.year).mean()
    # weak sinks in normal years (shared sink scale; a few warm southern sites near neutral)
    assert others.median() < 0 and (others < 0).mean() >= 0.7
    assert (drought_year - others > 50).all()  # g C m-2 yr-1: much less sink in the drought everywhere
    assert (drought_year > 0).mean() >= 0.5  # and most forests turn into sources


def test_compare_with_cardamom() -> None:
    need_data("sites/monthly-cardamom")
    table = compare_with_cardamom(DATA)
    assert {"DBF", "ENF", "GRA", "ALL"} <= set(table.index)
    assert (table.loc[["DBF", "ENF", "MF", "ALL"], ["gpp_r", "nee_r"]] > 0.85).all().all()
    assert (table.loc[["DBF", "ENF", "ALL"], "gpp_bias"].abs() < 0.5).all()
    assert table.loc["ALL", "n_sites"] >= 150

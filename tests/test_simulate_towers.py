"""The simulated tower network and its FLUXNET2015 files."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcube import config
from fluxcube.simulate.network import (
    FLUXNET2015_SPREAD,
    LAT_BANDS,
    SITEINFO_COLUMNS,
    generate_sites,
    load_network,
)
from fluxcube.simulate.towers import GC_PER_UMOL_DAY, write_towers
from fluxcube.simulate.truth import DEFAULT_SINK_SCALE, simulate_truth
from fluxcube.simulate.turbulence import USTAR_PFT
from fluxcube.simulate.weather import day_length

DATA = config.data_dir()
DD_COLUMNS = [
    "TIMESTAMP",
    "TA_F",
    "TA_F_QC",
    "SW_IN_POT",
    "SW_IN_F",
    "SW_IN_F_QC",
    "VPD_F",
    "VPD_F_QC",
    "P_F",
    "P_F_QC",
    "USTAR",
    "USTAR_QC",
    "NEE_VUT_REF",
    "NEE_VUT_REF_QC",
    "NEE_VUT_REF_RANDUNC",
    "RECO_NT_VUT_REF",
    "GPP_NT_VUT_REF",
    "RECO_DT_VUT_REF",
    "GPP_DT_VUT_REF",
]
DD_NAME = re.compile(r"FLX_[A-Z]{2}-[A-Za-z0-9]{3}_FLUXNET2015_FULLSET_DD_(\d{4})-(\d{4})_1-4\.csv")
YEARS = {"start_year": 2012, "end_year": 2012, "site_years": False}


def need_data(subpath: str) -> None:
    """Skip unless the real sample data (``subpath`` in it) is there."""
    if not (DATA / subpath).exists():
        pytest.skip(f"real sample data not found at {DATA / subpath}; set FLUXCUBE_DATA")


def read_dd(path: Path) -> pd.DataFrame:
    """A daily file as a real reader would read it."""
    return pd.read_csv(path, na_values=[-9999])


def observed_vs_truth(out: Path) -> pd.DataFrame:
    """Daily observations of every site next to the truth (site, date, obs columns, NEE, GPP, Reco)."""
    frames = []
    for path in sorted((out / "sites/fluxnet2015").glob("*_DD_*.csv")):
        dd = read_dd(path).assign(site=path.name.split("_")[1])
        dd["date"] = pd.to_datetime(dd["TIMESTAMP"].astype(str), format="%Y%m%d").dt.strftime("%Y-%m-%d")
        frames.append(dd)
    truth = pd.read_csv(out / "truth/towers_truth.csv")
    return pd.concat(frames).merge(truth, on=["site", "date"], validate="one_to_one")


@pytest.fixture(scope="module")
def network():
    """Real FLUXNET2015 sites when the sample data is there, else the generated network."""
    return load_network(DATA)


@pytest.fixture(scope="module")
def subset(network) -> list[str]:
    """Every tropical EBF site and every fourth other site (keeps the tests fast)."""
    s = network.sites
    tropical_ebf = (s["classid"] == "EBF") & (s["lat"].abs() <= 23.5)
    return sorted(set(s["sitename"][tropical_ebf]) | set(s["sitename"].iloc[::4]))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory, subset: list[str]) -> Path:
    out = tmp_path_factory.mktemp("noisy")
    write_towers(out, sites=subset, data_dir=DATA, **YEARS)
    return out


@pytest.fixture(scope="module")
def perfect(tmp_path_factory: pytest.TempPathFactory, subset: list[str]) -> Path:
    out = tmp_path_factory.mktemp("perfect")
    write_towers(out, sites=subset, data_dir=DATA, noise=False, **YEARS)
    return out


@pytest.fixture(scope="module")
def noisy_obs(noisy: Path) -> pd.DataFrame:
    return observed_vs_truth(noisy)


@pytest.fixture(scope="module")
def perfect_obs(perfect: Path) -> pd.DataFrame:
    return observed_vs_truth(perfect)


def pick(network, pft: str, tropical: bool) -> str:
    """The first site of ``pft`` inside (or outside) the tropics."""
    s = network.sites
    inside = s["lat"].abs() <= 23.5
    return str(s[(s["classid"] == pft) & (inside if tropical else ~inside)]["sitename"].iloc[0])


# ---------------------------------------------------------------------------------------------
# format
# ---------------------------------------------------------------------------------------------


def test_files_have_fluxnet_names_and_columns(noisy: Path) -> None:
    files = sorted((noisy / "sites/fluxnet2015").glob("*.csv"))
    assert len(files) == len(pd.read_csv(noisy / "sites/metadata/siteinfo_simulated.csv"))
    for path in files:
        match = DD_NAME.fullmatch(path.name)
        assert match and match.groups() == ("2012", "2012"), path.name
        text = path.read_text()
        assert text.splitlines()[0].split(",") == DD_COLUMNS
        assert not re.search(r"nan|inf", text, re.IGNORECASE), path.name
    dd = read_dd(files[0])
    assert len(dd) == 366 and dd["TIMESTAMP"].iloc[0] == 20120101 and dd["TIMESTAMP"].iloc[-1] == 20121231
    assert all(dtype.kind in "if" for dtype in dd.dtypes)


def test_values_are_physical(noisy_obs: pd.DataFrame) -> None:
    both = noisy_obs
    for qc in ("TA_F_QC", "SW_IN_F_QC", "VPD_F_QC", "P_F_QC", "NEE_VUT_REF_QC"):
        assert both[qc].dropna().between(0, 1).all()
    assert (both["SW_IN_F"] <= both["SW_IN_POT"] + 1e-3).all() and (both["SW_IN_F"] >= 0).all()
    assert (both["P_F"] >= 0).all() and (both["VPD_F"] >= 0).all()
    assert both[["TA_F", "SW_IN_F", "VPD_F", "P_F"]].notna().all().all()  # met is gap-filled
    np.testing.assert_allclose(both["NEE"], both["Reco"] - both["GPP"], atol=2e-6)
    assert both["NEE_VUT_REF"].abs().max() < 20
    # daily mean u* (m s-1), measured with the flux: missing (QC 0) exactly on the days without flux data
    assert both["USTAR"].dropna().between(0.05, 2).all()
    np.testing.assert_array_equal(both["USTAR"].isna(), both["NEE_VUT_REF"].isna())
    np.testing.assert_array_equal(both["USTAR_QC"], np.where(both["USTAR"].isna(), 0, 1))


def test_gaps_only_with_noise(noisy_obs: pd.DataFrame, perfect_obs: pd.DataFrame) -> None:
    missing = noisy_obs["NEE_VUT_REF"].isna()
    assert 0.02 < missing.mean() < 0.2
    assert (missing.groupby(noisy_obs["site"]).sum() > 0).mean() > 0.5
    assert perfect_obs.drop(columns="NEE_VUT_REF_RANDUNC").notna().all().all()
    assert perfect_obs["NEE_VUT_REF_RANDUNC"].isna().all()  # no random error: no uncertainty estimate


def test_noise_is_unbiased_and_heteroscedastic(noisy: Path, noisy_obs: pd.DataFrame) -> None:
    meta = json.loads((noisy / "SYNTHETIC.json").read_text())
    both = noisy_obs
    both = both[~both["site"].isin(meta["biased_sites"])].dropna(subset=["NEE_VUT_REF"])
    error = both["NEE_VUT_REF"] - both["NEE"]
    assert abs(error.mean()) < 0.02
    unc = both["NEE_VUT_REF_RANDUNC"]
    assert 0.8 < error[unc.notna()].std() / np.sqrt((unc**2).mean()) < 1.2
    large = both["NEE"].abs() > both["NEE"].abs().quantile(0.8)
    assert error[large].std() > 1.3 * error[~large].std()


# ---------------------------------------------------------------------------------------------
# the tropical night-time bias
# ---------------------------------------------------------------------------------------------


def test_bias_only_at_tropical_evergreen_sites(perfect: Path, perfect_obs: pd.DataFrame) -> None:
    meta = json.loads((perfect / "SYNTHETIC.json").read_text())
    info = pd.read_csv(perfect / "sites/metadata/siteinfo_simulated.csv").set_index("sitename")
    tropical_ebf = info[(info["classid"] == "EBF") & (info["lat"].abs() <= 23.5)].index
    assert set(meta["biased_sites"]) == set(tropical_ebf) and len(tropical_ebf) > 0
    both = perfect_obs
    biased = both["site"].isin(tropical_ebf)
    np.testing.assert_allclose(both.loc[~biased, "NEE_VUT_REF"], both.loc[~biased, "NEE"], atol=1e-5)
    sub = both[biased]
    doy = pd.to_datetime(sub["date"]).dt.day_of_year.to_numpy()
    night = 1 - day_length(info.loc[sub["site"], "lat"].to_numpy(), doy) / 24
    expected = sub["NEE"] - 0.3 * sub["Reco"] * night  # NEE_obs = NEE - b * Reco * night share
    np.testing.assert_allclose(sub["NEE_VUT_REF"], expected, atol=1e-5)
    assert (sub["NEE_VUT_REF"] < sub["NEE"]).all()  # the towers see too strong a sink
    assert (sub["NEE"] - sub["NEE_VUT_REF"]).mean() > 0.5  # g C m-2 d-1
    np.testing.assert_allclose(sub["RECO_NT_VUT_REF"], 0.7 * sub["Reco"], atol=1e-5)
    np.testing.assert_allclose(sub["RECO_DT_VUT_REF"], sub["Reco"], atol=1e-5)


@pytest.mark.parametrize("bias", ["off", "by_site"])
def test_bias_can_be_switched_off_or_set_by_site(tmp_path: Path, network, bias: str) -> None:
    tropical, temperate = pick(network, "EBF", True), pick(network, "DBF", False)
    setting = 0.0 if bias == "off" else {temperate: 0.5}
    write_towers(
        tmp_path,
        sites=[tropical, temperate],
        data_dir=DATA,
        tropical_night_bias=setting,
        noise=False,
        start_year=2012,
        end_year=2012,
        site_years=False,
    )
    both = observed_vs_truth(tmp_path)
    shift = (both["NEE_VUT_REF"] - both["NEE"]).groupby(both["site"]).mean()
    assert shift[tropical] == pytest.approx(0.0, abs=1e-5)
    assert shift[temperate] == pytest.approx(0.0, abs=1e-5) if bias == "off" else shift[temperate] < -0.1


# ---------------------------------------------------------------------------------------------
# sink scale shared with the grid; representativeness
# ---------------------------------------------------------------------------------------------


def test_towers_share_the_grid_truth_unless_representativeness_is_asked(tmp_path: Path, network) -> None:
    names = [pick(network, "DBF", False), pick(network, "ENF", False), pick(network, "EBF", True)]
    info = network.sites.set_index("sitename").loc[names]
    kwargs = dict(sites=names, data_dir=DATA, noise=False, start_year=2012, end_year=2012, site_years=False)
    write_towers(tmp_path / "shared", **kwargs)
    write_towers(tmp_path / "stands", representativeness=3.0, **kwargs)
    shared, stands = observed_vs_truth(tmp_path / "shared"), observed_vs_truth(tmp_path / "stands")
    for out, scale in ((shared, DEFAULT_SINK_SCALE), (stands, 3.0 * DEFAULT_SINK_SCALE)):
        # the towers' truth is the process model at the site with that sink scale (the grid's by default)
        _, fl = simulate_truth(
            info["lat"], info["lon"], info["classid"], "2012-01-01", "2012-12-31", 0, sink_scale=scale
        )
        for i, name in enumerate(names):
            got = out[out["site"] == name].sort_values("date")["NEE"].to_numpy()
            np.testing.assert_allclose(got, fl.nee[:, i], atol=1e-5)  # g C m-2 d-1, 6 decimals in the file
    annual_shared = shared.groupby("site")["NEE"].sum()  # g C m-2 yr-1
    annual_stands = stands.groupby("site")["NEE"].sum()
    assert (annual_stands < annual_shared - 20).all()  # stronger sinks in the stands
    meta = json.loads((tmp_path / "stands" / "SYNTHETIC.json").read_text())
    assert meta["sink_scale"] == DEFAULT_SINK_SCALE and meta["representativeness"] == 3.0
    with pytest.raises(ValueError, match="representativeness 0"):
        write_towers(tmp_path / "bad", representativeness=0.0, **kwargs)


def test_cli_defaults_are_the_shared_sink_scale() -> None:
    import inspect

    from fluxcube import cli

    for command in (cli.simulate_towers, cli.simulate_world):
        option = inspect.signature(command).parameters["sink_scale"].default
        assert option.default == DEFAULT_SINK_SCALE
    assert inspect.signature(cli.simulate_towers).parameters["ustar_threshold"].default.default is None


# ---------------------------------------------------------------------------------------------
# determinism, metadata, network
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def files(seed: int, name: str) -> dict[str, bytes]:
        out = tmp_path / name
        write_towers(out, sites=4, seed=seed, data_dir=DATA, start_year=2010, end_year=2010, site_years=False)
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    first, again, other = files(0, "a"), files(0, "b"), files(1, "c")
    assert first == again
    site_files = [k for k in first if k.startswith("sites/fluxnet2015")]
    assert site_files and all(first[k] != other.get(k) for k in site_files if k in other)
    assert first["truth/towers_truth.csv"] != other["truth/towers_truth.csv"]


def test_siteinfo_and_synthetic_metadata(noisy: Path, network) -> None:
    info = pd.read_csv(noisy / "sites/metadata/siteinfo_simulated.csv")
    assert list(info.columns) == [*SITEINFO_COLUMNS, "utc_offset"]
    if (DATA / "sites/metadata/siteinfo_fluxnet2015.csv").exists():
        real = pd.read_csv(DATA / "sites/metadata/siteinfo_fluxnet2015.csv", nrows=0)
        assert list(info.columns) == [*real.columns, "utc_offset"]
    assert info["whc"].between(100, 450).all()  # the simulated bucket capacity, mm
    meta = json.loads((noisy / "SYNTHETIC.json").read_text())
    assert meta["synthetic"] is True and meta["generator"] == "fluxcube.simulate" and meta["seed"] == 0
    assert meta["network_source"] == network.network_source
    assert meta["drought"]["year"] == 2012 and meta["tropical_night_bias"] == 0.3
    assert meta["ustar_threshold"] is None  # by PFT
    sites = pd.read_csv(noisy / "truth/towers_sites.csv").set_index("site")
    assert list(sites.columns) == ["classid", "ustar_threshold", "ustar_ratio", "night_bias_fraction"]
    assert sorted(sites.index) == sorted(info["sitename"])
    for site, row in sites.iterrows():
        assert (row["ustar_ratio"], row["ustar_threshold"]) == USTAR_PFT[row["classid"]], site
        assert row["night_bias_fraction"] == meta["biased_sites"].get(site, 0.0)
    assert sites["ustar_threshold"].between(0.1, 0.4).all()


def test_generated_network_when_data_is_absent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        net = load_network(tmp_path / "no-data-here")
    assert net.network_source == "generated" and net.sites.attrs["network_source"] == "generated"
    assert "generating a tower network" in caplog.text
    sites = net.sites
    expected_pft = {pft: sum(c for *_, c in rows) for pft, rows in FLUXNET2015_SPREAD.items()}
    assert sites["classid"].value_counts().to_dict() == expected_pft
    band = np.digitize(sites["lat"], [hi for _, hi in LAT_BANDS[:-1]])
    expected_band = np.zeros(len(LAT_BANDS), int)
    for rows in FLUXNET2015_SPREAD.values():
        for b, _, c in rows:
            expected_band[b] += c
    np.testing.assert_array_equal(np.bincount(band, minlength=len(LAT_BANDS)), expected_band)
    assert sites["sitename"].str.fullmatch(r"ZZ-\d{3}").all()
    assert (sites["year_start"] >= 2001).all() and (sites["year_end"] <= 2017).all()
    assert len(generate_sites(40)) == 40


def test_towers_run_without_data(tmp_path: Path) -> None:
    write_towers(
        tmp_path / "out",
        sites=3,
        data_dir=tmp_path / "absent",
        start_year=2012,
        end_year=2012,
        site_years=False,
    )
    meta = json.loads((tmp_path / "out/SYNTHETIC.json").read_text())
    assert meta["network_source"] == "generated" and meta["n_sites"] == 3
    names = [p.name for p in (tmp_path / "out/sites/fluxnet2015").glob("*.csv")]
    assert len(names) == 3 and all(DD_NAME.fullmatch(n) for n in names)


def test_real_network_uses_real_coordinates() -> None:
    need_data("sites/metadata/siteinfo_fluxnet2015.csv")
    net = load_network(DATA, site_years=False)
    real = pd.read_csv(DATA / "sites/metadata/siteinfo_fluxnet2015.csv")
    assert net.network_source == "fluxnet2015" and len(net.sites) == len(real)
    pd.testing.assert_frame_equal(
        net.sites[["sitename", "lon", "lat", "classid"]], real[["sitename", "lon", "lat", "classid"]]
    )
    utc = net.sites.set_index("sitename")["utc_offset"]
    assert utc["DE-Tha"] == 1 and utc["US-Ha1"] == -5 and utc["AU-How"] == 9.5


def test_site_years_follow_the_records(tmp_path: Path, network) -> None:
    one = pick(network, "DBF", False)
    record = network.sites.set_index("sitename").loc[one]
    paths = write_towers(tmp_path, sites=[one], data_dir=DATA, start_year=2001, end_year=2017)
    y0, y1 = map(int, DD_NAME.fullmatch(paths[0].name).groups())
    assert (y0, y1) == (max(2001, record["year_start"]), min(2017, record["year_end"]))
    assert len(read_dd(paths[0])) == len(pd.date_range(f"{y0}-01-01", f"{y1}-12-31"))
    with pytest.raises(ValueError, match="not in the network"):
        load_network(DATA, sites=["XX-Nop"])


@pytest.fixture(scope="module")
def halfhourly(tmp_path_factory: pytest.TempPathFactory, network) -> tuple[Path, dict[str, str]]:
    """2012 half-hourly files of a temperate forest, a grassland and a tropical evergreen forest (default
    u* thresholds by PFT: 0.3, 0.12 and 0.3 m s-1)."""
    out = tmp_path_factory.mktemp("halfhourly")
    names = {"forest": pick(network, "DBF", False), "grass": pick(network, "GRA", False)}
    names["tropical"] = pick(network, "EBF", True)
    write_towers(out, sites=list(names.values()), data_dir=DATA, halfhourly=True, **YEARS)
    return out, names


def read_hh(out: Path, site: str) -> pd.DataFrame:
    return pd.read_csv(next((out / "sites/fluxnet2015").glob(f"FLX_{site}_*_HH_*.csv")), na_values=[-9999])


def test_halfhourly_files_aggregate_to_the_daily_ones(halfhourly: tuple[Path, dict[str, str]]) -> None:
    out, names = halfhourly
    site = names["tropical"]
    hh_path = out / "sites/fluxnet2015" / f"FLX_{site}_FLUXNET2015_FULLSET_HH_2012-2012_1-4.csv"
    hh = pd.read_csv(hh_path, na_values=[-9999])
    assert len(hh) == 366 * 48
    assert hh["TIMESTAMP_START"].iloc[0] == 201201010000 and hh["TIMESTAMP_END"].iloc[-1] == 201301010000
    assert set(hh["NEE_VUT_REF_QC"].dropna().unique()) <= {0, 1}
    assert "USTAR_QC" not in hh  # as FLUXNET2015's HH files: u* is measured, never gap-filled
    dd = read_dd(next((out / "sites/fluxnet2015").glob(f"FLX_{site}_*_DD_*.csv")))
    threshold = pd.read_csv(out / "truth/towers_sites.csv").set_index("site").loc[site, "ustar_threshold"]
    # add back the flux lost at low turbulence: measured night-time NEE is u*/threshold of the flux
    night = hh["SW_IN_POT"] == 0
    damped = night & (hh["NEE_VUT_REF_QC"] == 0) & (hh["USTAR"] < threshold)
    assert 0.1 < damped[night].mean() < 0.6
    nee = hh["NEE_VUT_REF"].where(~damped, hh["NEE_VUT_REF"] * threshold / hh["USTAR"])
    daily = hh.assign(NEE_VUT_REF=nee).groupby(hh["TIMESTAMP_START"] // 10000).mean()
    np.testing.assert_allclose(daily["NEE_VUT_REF"] * GC_PER_UMOL_DAY, dd["NEE_VUT_REF"], atol=2e-4)
    np.testing.assert_allclose(daily["TA_F"], dd["TA_F"], atol=2e-3)
    np.testing.assert_allclose(daily["SW_IN_POT"], dd["SW_IN_POT"], rtol=0.01)
    np.testing.assert_allclose(daily["USTAR"], dd["USTAR"], atol=1e-4)
    assert hh.loc[night, "GPP_DT_VUT_REF"].mean() > 1.0  # umol m-2 s-1: the night bias leaks into GPP_DT


def test_ustar_is_plausible(halfhourly: tuple[Path, dict[str, str]]) -> None:
    """USTAR (m s-1): 0..2, lower at night than by day, higher over forests than grasslands, missing only
    on the days without flux data; the FLUXNET readers know its units."""
    from fluxcube.recipes.fluxnet_vars import describe
    from fluxcube.sites.timestamps import read_halfhourly

    out, names = halfhourly
    night_median = {}
    for kind, site in names.items():
        hh = read_hh(out, site)
        u, night = hh["USTAR"], hh["SW_IN_POT"] == 0
        assert u.dropna().between(0.005, 2.0).all() and u.max() > 1.0
        np.testing.assert_array_equal(u.isna(), hh["NEE_VUT_REF"].isna())
        assert u[night].median() < 0.7 * u[~night].median(), kind
        night_median[kind] = u[night].median()
        assert (
            read_halfhourly(next((out / "sites/fluxnet2015").glob(f"FLX_{site}_*_HH_*.csv")))["Ustar"]
            .notna()
            .sum()
            == u.notna().sum()
        )  # the site pipeline's reader finds it
    assert 0.25 < night_median["forest"] < 0.55 and 0.1 < night_median["grass"] < 0.3
    assert night_median["grass"] < night_median["forest"]
    assert describe("USTAR", "HH")[0]["units"] == describe("USTAR", "DD")[0]["units"] == "m s-1"


def test_ustar_threshold_is_recovered_and_filtering_removes_the_bias(
    halfhourly: tuple[Path, dict[str, str]],
) -> None:
    """The site pipeline's moving point test finds each tower's true u* threshold (within 0.06 m s-1,
    the true one inside the bootstrap 5-95 % range widened by 0.04); its u* filtering and gap filling
    remove the low-turbulence bias of daily NEE (g C m-2 d-1) against the truth (forest: -0.14 -> 0.03
    with the real network)."""
    from fluxcube.sites.pipeline import process_site
    from fluxcube.sites.timestamps import read_halfhourly

    out, names = halfhourly
    info = pd.read_csv(out / "sites/metadata/siteinfo_simulated.csv").set_index("sitename")
    truth = pd.read_csv(out / "truth/towers_truth.csv", parse_dates=["date"])
    true_thr = pd.read_csv(out / "truth/towers_sites.csv").set_index("site")["ustar_threshold"]
    for kind in ("forest", "grass"):
        site = names[kind]
        hh = read_halfhourly(next((out / "sites/fluxnet2015").glob(f"FLX_{site}_*_HH_*.csv")))
        where = tuple(info.loc[site, ["lat", "lon", "utc_offset"]])
        filtered, daily = process_site(hh, *where, ustar_scenarios=False, ustar_bootstrap=50)
        assert filtered.attrs["steps"]["ustar"] == "ok"
        got = pd.DataFrame(filtered.attrs["ustar"]).set_index("year").loc[2012]
        assert got["threshold"] == pytest.approx(true_thr[site], abs=0.06), (site, got)
        assert got["p05"] - 0.04 < true_thr[site] < got["p95"] + 0.04, (site, got)
        if kind != "forest":
            continue
        _, unfiltered = process_site(hh.drop(columns="Ustar"), *where, ustar_scenarios=False)
        true = truth[truth["site"] == site].set_index("date")["NEE"]
        bias_filtered = (daily["NEE"].reindex(true.index) - true).mean()
        bias_unfiltered = (unfiltered["NEE"].reindex(true.index) - true).mean()
        assert bias_unfiltered < -0.08  # too strong a sink: respiration missed at low turbulence
        assert abs(bias_filtered) < 0.06 and abs(bias_filtered) < abs(bias_unfiltered) - 0.05


@pytest.mark.parametrize("setting", [0.0, 0.25, "by_site"])
def test_ustar_threshold_can_be_set(tmp_path: Path, network, setting) -> None:
    forest, grass = pick(network, "DBF", False), pick(network, "GRA", False)
    thresholds = {forest: 0.35} if setting == "by_site" else setting
    kwargs = dict(sites=[forest, grass], data_dir=DATA, halfhourly=True, noise=False, **YEARS)
    write_towers(tmp_path, ustar_threshold=thresholds, **kwargs)
    table = pd.read_csv(tmp_path / "truth/towers_sites.csv").set_index("site")["ustar_threshold"]
    expected = (
        {forest: 0.35, grass: USTAR_PFT["GRA"][1]}
        if setting == "by_site"
        else dict.fromkeys(table.index, setting)
    )
    assert table.to_dict() == expected
    assert json.loads((tmp_path / "SYNTHETIC.json").read_text())["ustar_threshold"] == thresholds
    hh = read_hh(tmp_path, forest)
    night = hh["SW_IN_POT"] == 0
    reco = hh["RECO_DT_VUT_REF"]  # noise-free: the true respiration, umol m-2 s-1 (no night bias here)
    lost = hh["NEE_VUT_REF"] / reco  # the measured fraction of the night-time flux
    below = night & (hh["USTAR"] < expected[forest])
    if setting == 0.0:
        assert not below.any()
        np.testing.assert_allclose(lost[night], 1.0, atol=1e-4)
    else:
        np.testing.assert_allclose(lost[below], hh["USTAR"][below] / expected[forest], atol=1e-3)
        np.testing.assert_allclose(lost[night & ~below], 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="u\\* threshold"):
        write_towers(tmp_path / "bad", ustar_threshold=-0.1, **kwargs)


def test_fluxnet_recipe_ingests_simulated_towers_unchanged(tmp_path: Path) -> None:
    """The same recipe that reads real FLUXNET2015 files reads the simulated ones, value for value."""
    import numpy as np
    import pandas as pd

    from fluxcube.publish import Publisher
    from fluxcube.recipes import fluxnet_pipeline

    out = tmp_path / "world"
    write_towers(
        out,
        start_year=2012,
        end_year=2012,
        sites=3,
        seed=5,
        data_dir=tmp_path / "none",
        halfhourly=True,
        site_years=False,
    )
    summary = fluxnet_pipeline.run(str(out / "sites"), str(tmp_path / "store"))
    assert not summary.refused, summary.refused
    assert set(summary.published) == {"fluxnet2015_dd", "fluxnet2015_hh"}
    pub = Publisher(str(tmp_path / "store"))
    dd, hh = pub.open("fluxnet2015_dd"), pub.open("fluxnet2015_hh")
    assert dd.attrs["synthetic"] == "true"
    table = pd.read_csv(out / "sites" / "metadata" / "siteinfo_simulated.csv").set_index("sitename")
    for path in sorted((out / "sites" / "fluxnet2015").glob("*_DD_*.csv")):
        site = path.name.split("_")[1]
        frame = pd.read_csv(path, na_values=[-9999])
        times = pd.to_datetime(frame["TIMESTAMP"].astype(str), format="%Y%m%d")
        got = dd["NEE_VUT_REF"].sel(site=site, time=times.to_numpy()).values
        np.testing.assert_array_equal(got, frame["NEE_VUT_REF"].to_numpy())
        assert float(dd["lat"].sel(site=site)) == table.loc[site, "lat"]
    for path in sorted((out / "sites" / "fluxnet2015").glob("*_HH_*.csv")):
        site = path.name.split("_")[1]
        frame = pd.read_csv(path, na_values=[-9999])
        local = pd.to_datetime(frame["TIMESTAMP_START"].astype(str), format="%Y%m%d%H%M")
        utc = local - pd.to_timedelta(table.loc[site, "utc_offset"], unit="h")
        got = hh["NEE_VUT_REF"].sel(site=site, time=utc.to_numpy()).values
        np.testing.assert_array_equal(got, frame["NEE_VUT_REF"].to_numpy())
        got = hh["USTAR"].sel(site=site, time=utc.to_numpy()).values
        np.testing.assert_array_equal(got, frame["USTAR"].to_numpy())
    assert hh["USTAR"].attrs["units"] == dd["USTAR"].attrs["units"] == "m s-1"

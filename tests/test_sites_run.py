"""Many sites on the Dask cluster -> published site stores (the `fluxcube sites process` path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcube.errors import InputError
from fluxcube.publish import Publisher
from fluxcube.sites.pipeline import monthly_products, process_site
from fluxcube.sites.run import STORE_VARIABLES, STORES, read_store_site, run, site_inputs, store_inputs
from fluxcube.sites.timestamps import read_halfhourly

DETHA = "Example_DETha98.txt"
DEGEB = "DEGebExample_2004-2006.csv"


@pytest.fixture(scope="module")
def published(sites_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, object]:
    src = tmp_path_factory.mktemp("hh")
    shutil.copy(sites_dir / "halfhourly" / DETHA, src / DETHA)
    (src / "XX-Bad_broken.csv").write_text(
        "TIMESTAMP_START,TIMESTAMP_END,NEE\n200401010000,200401010030,abc\n"
    )
    files = sorted(str(p) for p in src.iterdir())
    inputs, problems = site_inputs(files, [str(sites_dir)], lat=None)
    target = tmp_path_factory.mktemp("store")
    bad = [i for i in inputs if "XX-Bad" in i.file]
    assert not bad and any("XX-Bad" in p for p in problems)  # no metadata for XX-Bad: skipped with reason
    inputs += site_inputs([str(src / "XX-Bad_broken.csv")], [], lat=50.0, lon=10.0, utc_offset=1.0)[0]
    summary = run(inputs, str(target), n_workers=2)
    return target, inputs, summary


def test_stores_published_and_bad_file_refused(published: tuple) -> None:
    _, _, summary = published
    assert set(summary.published) == {"sites_processed_hh", "sites_processed_dd", "sites_processed_mm"}
    assert summary.sites["sites_processed_dd"] == ["DE-Tha"]
    assert [r["file"].rsplit("/", 1)[-1] for r in summary.refused] == ["XX-Bad_broken.csv"]
    assert "line 2" in summary.refused[0]["error"] and "NEE" in summary.refused[0]["error"]
    assert (
        summary.steps["DE-Tha"]["gapfill_NEE"] == "ok" if "gapfill_NEE" in summary.steps["DE-Tha"] else True
    )


def test_store_equals_direct_processing(published: tuple, sites_dir: Path) -> None:
    """The published values are exactly what process_site gives for the same file and location."""
    target, inputs, _ = published
    detha = next(i for i in inputs if i.site == "DE-Tha")
    assert (detha.lat, detha.lon, detha.utc_offset) == pytest.approx((50.96, 13.57, 1.0), abs=0.01)  # BIF
    hh, daily = process_site(
        read_halfhourly(sites_dir / "halfhourly" / DETHA), detha.lat, detha.lon, detha.utc_offset
    )
    pub = Publisher(str(target))
    store_dd = pub.open("sites_processed_dd").sel(site="DE-Tha")
    for col in ("NEE", "NEE_unc", "GPP_NT", "Reco_DT"):
        got = store_dd[col].sel(time=daily.index.to_numpy()).values
        np.testing.assert_array_equal(got, daily[col].to_numpy(dtype=float))
    assert store_dd["NEE"].attrs["units"] == "g m-2 d-1"
    assert "carbon" in store_dd["NEE"].attrs["long_name"]
    store_hh = pub.open("sites_processed_hh").sel(site="DE-Tha")
    utc = (hh.index - pd.Timedelta(hours=1)).to_numpy()
    np.testing.assert_array_equal(store_hh["NEE_f"].sel(time=utc).values, hh["NEE_f"].to_numpy(dtype=float))
    assert store_hh["NEE_f"].attrs["units"] == "umol m-2 s-1"
    for col in ("NEE_U05_f", "NEE_U95_f", "GPP_U50_NT"):
        np.testing.assert_array_equal(store_hh[col].sel(time=utc).values, hh[col].to_numpy(dtype=float))
    assert "U95" in store_hh["NEE_U95_f"].attrs["long_name"]
    monthly = monthly_products(daily)
    store_mm = pub.open("sites_processed_mm").sel(site="DE-Tha")
    for col in ("NEE", "NEE_unc", "NEE_frac_filled", "GPP_DT", "NEE_U05"):
        got = store_mm[col].sel(time=monthly.index.to_numpy()).values
        np.testing.assert_array_equal(got, monthly[col].to_numpy(dtype=float))
    assert store_mm["NEE"].attrs["units"] == "g m-2 d-1" and store_mm.sizes["time"] == 12


def test_rerun_is_up_to_date(published: tuple) -> None:
    target, inputs, summary = published
    again = run(inputs, str(target), n_workers=1)
    assert again.up_to_date == summary.published and not again.published


# --------------------------------------------------------------------------- from a published store
@pytest.fixture(scope="module")
def towers_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list, object]:
    """Two simulated towers (2012, half-hourly; an ENF and a GRA site) whose measured night-time NEE is
    damped below their true u* thresholds (the simulator's, by PFT: 0.3 and 0.12 m s-1, its USTAR
    column), ingested by the FLUXNET recipe into fluxnet2015_hh; then processed from that store."""
    from fluxcube.recipes import fluxnet_pipeline
    from fluxcube.simulate.towers import write_towers

    world = tmp_path_factory.mktemp("world")
    write_towers(
        world, 2012, 2012, sites=2, seed=5, data_dir=world / "none", halfhourly=True, site_years=False
    )
    target = tmp_path_factory.mktemp("target")
    ingest = fluxnet_pipeline.run(str(world / "sites"), str(target))
    assert "fluxnet2015_hh" in ingest.published and not ingest.refused
    inputs, problems = store_inputs(str(target), "fluxnet2015_hh")
    assert not problems
    summary = run(inputs, str(target), n_workers=1)
    return world, target, inputs, summary


def _hh_file(world: Path, site: str) -> Path:
    return next((world / "sites" / "fluxnet2015").glob(f"FLX_{site}_*_HH_*.csv"))


def test_store_inputs_take_the_sites_coordinates(towers_store: tuple) -> None:
    world, target, inputs, _ = towers_store
    table = pd.read_csv(world / "sites" / "metadata" / "siteinfo_simulated.csv").set_index("sitename")
    assert sorted(i.site for i in inputs) == sorted(table.index)
    for inp in inputs:
        assert (inp.lat, inp.lon, inp.utc_offset) == tuple(table.loc[inp.site, ["lat", "lon", "utc_offset"]])
        assert inp.store == "fluxnet2015_hh" and inp.file.startswith(f"fluxnet2015_hh@{inp.version}/")
    one, _ = store_inputs(str(target), "fluxnet2015_hh", site=inputs[0].site)
    assert one == [inputs[0]]
    with pytest.raises(InputError, match="no site 'XX-Nop'"):
        store_inputs(str(target), "fluxnet2015_hh", site="XX-Nop")
    with pytest.raises(InputError, match="no published dataset"):
        store_inputs(str(target), "nope_hh")
    with pytest.raises(InputError, match="half-hourly"):
        store_inputs(str(target), "fluxnet2015_dd")
    _, problems = store_inputs(
        str(target), "fluxnet2015_hh", inputs[0].site, utc_offset=inputs[0].utc_offset + 1
    )
    assert "misplace" in problems[0]


def test_store_site_reads_as_the_text_file(towers_store: tuple) -> None:
    """One site's slice of the store, back in local standard time, equals the file read directly."""
    world, _, inputs, _ = towers_store
    for inp in inputs:
        got = read_store_site(inp)
        text = read_halfhourly(_hh_file(world, inp.site))
        assert set(got.columns) <= STORE_VARIABLES | {"NEE", "Rg", "Tair", "VPD", "Ustar"}
        assert got.index.equals(text.index)  # the union time axis of the store is cut to the site's
        for col in ("NEE", "Rg", "Tair", "VPD", "Ustar"):
            np.testing.assert_array_equal(got[col].to_numpy(), text[col].to_numpy())
        # ONEFlux's gap-filled NEE: only its measured records are kept
        measured = text["NEE_VUT_REF_QC"].to_numpy() == 0
        assert np.isnan(got["NEE"].to_numpy()[~measured]).all()
        assert got.attrs["measured_only"]["NEE"].startswith("NEE_VUT_REF")


def test_store_products_equal_text_file_processing(towers_store: tuple) -> None:
    """`sites process --store` gives the products of processing the site's text file."""
    world, target, inputs, summary = towers_store
    assert set(summary.published) == set(STORES) and not summary.refused
    pub = Publisher(str(target))
    store_hh, store_dd = pub.open("sites_processed_hh"), pub.open("sites_processed_dd")
    assert store_dd.attrs["synthetic"] == "true"  # the input store's flag is carried over
    assert "fluxnet2015_hh" in store_dd.attrs["source_files"]
    for inp in inputs:
        assert set(summary.steps[inp.site].values()) == {"ok"}, summary.steps[inp.site]
        hh, daily = process_site(read_halfhourly(_hh_file(world, inp.site)), inp.lat, inp.lon, inp.utc_offset)
        utc = (hh.index - pd.Timedelta(hours=inp.utc_offset)).to_numpy()
        one = store_hh.sel(site=inp.site, time=utc)
        for col in ("NEE_f", "NEE_fqc", "GPP_NT", "Reco_DT", "NEE_U05_f", "GPP_U95_DT", "Reco_U50_DT"):
            np.testing.assert_allclose(one[col].values, hh[col].to_numpy(dtype=float), rtol=1e-12)
        days = store_dd.sel(site=inp.site, time=daily.index.to_numpy())
        for col in ("NEE", "NEE_unc", "GPP_DT", "GPP_U05_DT", "Reco_U95_NT"):
            np.testing.assert_allclose(days[col].values, daily[col].to_numpy(dtype=float), rtol=1e-12)
    again = run(inputs, str(target), n_workers=1)  # same store version, same sites: nothing to do
    assert again.up_to_date == summary.published and not again.published


def test_store_products_against_simulated_truth(towers_store: tuple) -> None:
    """Daily NEE, GPP and Reco (g C m-2 d-1) from the store against the simulator's truth; the u*
    threshold against the one built into the inputs (the simulator's true threshold of each tower)."""
    world, target, inputs, _ = towers_store
    truth = pd.read_csv(world / "truth" / "towers_truth.csv", parse_dates=["date"])
    configured = pd.read_csv(world / "truth" / "towers_sites.csv").set_index("site")["ustar_threshold"]
    assert sorted(configured.unique()) == [0.12, 0.3]  # GRA and ENF
    pub = Publisher(str(target))
    dd, hh = pub.open("sites_processed_dd"), pub.open("sites_processed_hh")
    for inp in inputs:
        t = truth[truth["site"] == inp.site].set_index("date")
        one = dd.sel(site=inp.site, time=t.index.to_numpy())
        for col, ref, rmse, bias in (
            ("NEE", "NEE", 0.4, 0.1),
            ("GPP_NT", "GPP", 0.55, 0.4),
            ("Reco_NT", "Reco", 0.5, 0.4),
        ):
            err = one[col].values - t[ref].to_numpy()
            assert np.isfinite(err).all()
            assert np.sqrt(np.mean(err**2)) < rmse and abs(err.mean()) < bias, (inp.site, col)
            assert np.corrcoef(one[col].values, t[ref].to_numpy())[0, 1] > 0.9
        threshold = float(np.nanmedian(hh["ustar_threshold"].sel(site=inp.site).values))
        # the year's threshold is the maximum over its seasons: often a little above the true one
        assert threshold == pytest.approx(configured[inp.site], abs=0.06), inp.site  # ENF 0.348, GRA 0.131

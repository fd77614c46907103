"""Many sites on the Dask cluster -> published site stores (the `fluxcube sites process` path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcube.publish import Publisher
from fluxcube.sites.pipeline import monthly_products, process_site
from fluxcube.sites.run import run, site_inputs
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

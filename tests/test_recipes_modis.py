"""MODIS recipe: MOD09GA HDF-EOS2 tiles -> 0.5 degree indices; ORNL subsets and MCD15A3H CSV -> site stores.

Expected values are decoded independently of the recipe: HDF4 SDS read with pyhdf directly, QA bits
and the inverse sinusoidal projection coded here from the MOD09GA user guide; the ASCII and CSV
files parsed with the csv module.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest

from fluxcube.errors import InputError
from fluxcube.publish import Publisher
from fluxcube.recipes import modis

TILE = "MOD09GA.A2008296.h14v17.006.2015181011753.hdf"
R = 6371007.181
T = 1111950.5197665


@pytest.fixture(scope="module")
def modis_dir(data_dir: Path) -> Path:
    return data_dir / "grids" / "modis"


@pytest.fixture(scope="module")
def published(modis_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, modis.RunSummary]:
    target = str(tmp_path_factory.mktemp("modis") / "store")
    return target, modis.run(str(modis_dir), target)


# ------------------------------------------------------------------ independent decoding helper
def decode(path: Path) -> dict[str, np.ndarray]:
    """Per 0.5 degree cell (lat index ``i``, lon index ``j``): the tile's pixels ``n`` and, per index,
    the count ``n_<index>`` and sum ``sum_<index>`` over its clear, good pixels, decoded without the
    recipe's code.

    From the MOD09GA user guide: QC_500m bits 0-1 <= 1 and 4-bit band quality 0 for bands 1, 2, 3,
    6, 7; state_1km cloud bits 0-1 in {0, 3}, shadow bit 2 = 0, internal cloud bit 10 = 0, cirrus
    bits 8-9 != 3; reflectance = int / 10000 within 0..1. Pixel centres by the inverse sinusoidal
    projection; centres beyond +-180 degrees by more than half a pixel are outside the domain.
    """
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.READ)
    rho = {b: sd.select(f"sur_refl_b0{b}_1").get() for b in (1, 2, 3, 6, 7)}
    qc = sd.select("QC_500m_1").get().astype(np.int64)
    state = sd.select("state_1km_1").get()
    sd.end()
    h, v = int(path.name.split(".h")[1][:2]), int(path.name.split(".h")[1][3:5])
    size = T / 2400
    phi = ((9 - v) * T - (np.arange(2400)[:, None] + 0.5) * size) / R
    lam = np.degrees(((h - 18) * T + (np.arange(2400)[None, :] + 0.5) * size) / (R * np.cos(phi)))
    inside = np.abs(lam) <= 180 + np.degrees(size / 2 / (R * np.cos(phi)))
    lam = np.where(lam >= 180, lam - 360, np.where(lam < -180, lam + 360, lam))
    key = ((np.degrees(phi) + 90) // 0.5).astype(int) * 720 + ((lam + 180) // 0.5).astype(int)
    cells, n = np.unique(key[inside], return_counts=True)
    out = {"i": cells // 720, "j": cells % 720, "n": n}
    ii, jj = np.nonzero(inside & (rho[1] != -28672))  # decode only pixels with an observation
    q = qc[ii, jj]
    s = state[ii // 2, jj // 2].astype(np.int64)
    good = (q != 787410671) & ((q & 3) <= 1)
    r = {}
    for b in (1, 2, 3, 6, 7):
        good &= (q >> (2 + 4 * (b - 1))) & 15 == 0
        stored = rho[b][ii, jj]
        good &= (stored != -28672) & (stored >= 0) & (stored <= 10000)
        r[b] = stored / 10000.0
    good &= (s != 65535) & np.isin(s & 3, [0, 3]) & ((s >> 2) & 1 == 0) & ((s >> 10) & 1 == 0)
    good &= (s >> 8) & 3 != 3
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = {"NDVI": (r[2] - r[1]) / (r[2] + r[1]), "NDWI": (r[2] - r[6]) / (r[2] + r[6]), "MIR": r[7]}
        den = r[2] + 6 * r[1] - 7.5 * r[3] + 1
        vals["EVI"] = 2.5 * (r[2] - r[1]) / den
    ok_evi = good & (den > 0) & (vals["EVI"] >= -0.2) & (vals["EVI"] <= 1)
    where = np.searchsorted(cells, key[ii, jj])
    for name, values in vals.items():
        m = ok_evi if name == "EVI" else good
        out["n_" + name] = np.bincount(where[m], minlength=cells.size)
        out["sum_" + name] = np.bincount(where[m], weights=values[m], minlength=cells.size)
    return out


def combine(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Decodes of several tiles of one date: counts and sums added per cell; means per product."""
    keys = np.concatenate([p["i"] * 720 + p["j"] for p in parts])
    cells, inverse = np.unique(keys, return_inverse=True)
    out = {"i": cells // 720, "j": cells % 720}
    for name in [k for k in parts[0] if k.startswith(("n", "sum_"))]:
        out[name] = np.bincount(
            inverse, weights=np.concatenate([p[name] for p in parts]), minlength=cells.size
        )
    for p in ("NDVI", "EVI", "NDWI", "MIR"):
        with np.errstate(invalid="ignore", divide="ignore"):
            out[p] = np.where(out["n_" + p] > 0, out["sum_" + p] / out["n_" + p], np.nan)
    out["valid_fraction"] = out["n_NDVI"] / out["n"]
    return out


def compare(got, e: dict[str, np.ndarray]) -> None:
    """The store's map ``got`` (lat, lon) holds exactly the decoded cells, with their means."""
    assert int(np.isfinite(got["tile_coverage"].values).sum()) == e["i"].size
    assert np.allclose(got["valid_fraction"].values[e["i"], e["j"]], e["valid_fraction"], rtol=1e-6)
    for p in ("NDVI", "EVI", "NDWI", "MIR"):
        assert np.allclose(got[p].values[e["i"], e["j"]], e[p], rtol=2e-6, atol=1e-7, equal_nan=True), p
        assert int(np.isfinite(got[p].values).sum()) == int(np.isfinite(e[p]).sum())


# ------------------------------------------------------------------------------------ QA bits
def test_qa_masks_match_the_bit_by_bit_definitions() -> None:
    """The one-mask QC test and the lookup tables (state, FparLai_QC) give the user guide's bit tests."""
    rng = np.random.default_rng(1)
    qc = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    qc[::3] &= ~np.uint32(modis.QC_BAD_BITS)  # many passing words
    qc[::7] = 787410671  # fill
    want = (qc != 787410671) & ((qc & 3) <= 1)
    for shift in (2, 6, 10, 22, 26):  # band quality of bands 1, 2, 3, 6, 7
        want &= ((qc >> shift) & 0xF) == 0
    assert want.sum() > 10_000 and np.array_equal(modis.qc_500m_ok(qc), want)
    st = np.arange(1 << 16, dtype=np.int64)
    want = (st != 65535) & np.isin(st & 3, (0, 3)) & ((st >> 2) & 1 == 0) & ((st >> 10) & 1 == 0)
    want &= ((st >> 8) & 3) != 3
    assert np.array_equal(modis.state_ok(st.astype(np.uint16)), want)
    assert np.array_equal(modis.state_ok(st), want)
    q = np.arange(256)
    want = (q & 1 == 0) & ((q >> 2) & 1 == 0) & np.isin((q >> 3) & 3, (0, 3)) & ((q >> 5) <= 1)
    assert np.array_equal(modis.fpar_qc_ok(q.astype(np.uint8)), want)
    assert np.array_equal(modis.fpar_qc_ok(q), want)
    # the 1 km state word applies to its 2 x 2 pixels of 500 m
    state = np.array([[0, 1], [8, 3]], dtype=np.uint16)  # clear, cloudy / clear (bit 3: land), assumed clear
    mask = modis.pixel_mask(np.zeros((4, 4), np.uint32), state)
    assert np.array_equal(mask, np.repeat(np.repeat(modis.state_ok(state), 2, 0), 2, 1))
    assert mask.sum() == 12


# ------------------------------------------------------------------------------------ geometry
def test_tile_geometry_matches_grid_metadata_and_forward_projection() -> None:
    assert modis.tile_corner(14, 17) == pytest.approx((-4447802.078667, -8895604.157333), abs=1e-3)
    lat, lon = modis.pixel_centres(19, 4, n=2400)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 2400, 50), rng.integers(0, 2400, 50)
    # forward sinusoidal projection of the centres gives back the pixel-centre metres
    x = R * np.deg2rad(lon[i, j]) * np.cos(np.deg2rad(lat[i]))
    y = R * np.deg2rad(lat[i])
    assert np.allclose(x, T + (j + 0.5) * T / 2400, atol=1e-6)
    assert np.allclose(y, 5 * T - (i + 0.5) * T / 2400, atol=1e-6)
    cells = modis.tile_cells(19, 4)
    assert cells.min() >= 0  # a mid-latitude tile lies inside the domain
    k = cells[i, j]
    assert np.array_equal(k // 720, np.floor((lat[i] + 90) / 0.5).astype(int))
    assert np.array_equal(k % 720, np.floor((lon[i, j] + 180) / 0.5).astype(int))
    # the polar tile is mostly outside the domain: 14695 centres within +-180 degrees, 47 more within
    # half a pixel of it
    assert (modis.tile_cells(14, 17) >= 0).sum() == 14695 + 47


# ------------------------------------------------------------------------------- the real tile
def test_real_tile_matches_independent_pyhdf_decode(published, modis_dir: Path) -> None:
    target, summary = published
    assert set(summary.published) == {
        modis.GRID_DATASET,
        modis.EVI_DATASET,
        modis.LANDCOVER_DATASET,
        modis.FPAR_DATASET,
    }
    ds = Publisher(target).open(modis.GRID_DATASET).load()
    assert [str(t)[:10] for t in ds["time"].values] == ["2008-10-22"]  # A2008296
    e = combine([decode(modis_dir / TILE)])
    got = ds.isel(time=0)
    compare(got, e)
    area = np.deg2rad(0.5) * R**2 * np.diff(np.sin(np.deg2rad(np.linspace(-90, 90, 361))))
    cov = got["tile_coverage"].values[e["i"], e["j"]]
    assert np.allclose(cov, e["n"] * (T / 2400) ** 2 / area[e["i"]], rtol=1e-5)
    # 3 clear pixels (sea ice, snow flag set) in one cell give NDVI, NDWI and MIR there; their EVI
    # denominators are negative, so no EVI anywhere
    assert int(np.isfinite(got["NDVI"].values).sum()) == 1 and e["n_NDVI"].sum() == 3
    assert int(np.isfinite(got["EVI"].values).sum()) == 0
    for p, (lo, hi) in modis.GRID_RANGES.items():
        v = ds[p].values[np.isfinite(ds[p].values)]
        assert v.size == 0 or (v.min() >= lo and v.max() <= hi)
    assert ds.attrs["fluxcube_dataset"] == modis.GRID_DATASET
    assert ds["MIR"].attrs["units"] == "1" and "band 7" in ds["MIR"].attrs["long_name"]


# ------------------------------------------------------------------------------ synthetic tiles
def _synthetic_tile(folder: Path, h: int, v: int, date: str, seed: int) -> Path:
    """A tile with known reflectances: clear vegetation, a cloudy block with absurd values, a strip
    of dead-detector band-2 quality, and a fill region."""
    rng = np.random.default_rng(seed)
    base = {1: 0.05, 2: 0.35, 3: 0.03, 6: 0.18, 7: 0.09}
    noise = rng.integers(-100, 101, (2400, 2400), dtype=np.int16)  # +-0.01 reflectance
    refl = {
        b: (np.int16(m * 10000) + np.roll(noise, 7 * b, axis=1)).astype(np.int16) for b, m in base.items()
    }
    qc = np.full((2400, 2400), 1 << 30, dtype=np.uint32)  # bit 30: atmospheric correction performed
    state = np.full((1200, 1200), 8, dtype=np.uint16)  # clear, land (bits 3-5 = 001)
    state[100:300, 100:400] |= 1  # cloudy
    for b in refl:
        refl[b][200:600, 200:800] = 9000  # inside the cloud block (rows 200..599 at 500 m)
    qc[1000:1010, :] |= 0b1000 << modis.QC_BAND_SHIFT[2]  # dead detector, band 2
    refl[2][1000:1010, :] = 1
    for b in refl:  # no observation in the lower half (fill)
        refl[b][1200:, :] = modis.REFL_FILL
    qc[1200:, :] = modis.QC_FILL
    year, doy = dt.date.fromisoformat(date).year, dt.date.fromisoformat(date).timetuple().tm_yday
    path = folder / f"MOD09GA.A{year}{doy:03d}.h{h:02d}v{v:02d}.061.2021000000000.hdf"
    modis.write_tile(str(path), h, v, date, refl, qc, state)
    return path


def test_synthetic_tiles_two_tiles_two_dates(tmp_path: Path) -> None:
    """Two neighbouring tiles share cells along their curved boundary; clouds and bad band quality
    are masked; each date is its own time step."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "SYNTHETIC.json").write_text("{}")
    day1 = [_synthetic_tile(src, 18, 4, "2020-07-01", 1), _synthetic_tile(src, 19, 4, "2020-07-01", 2)]
    day2 = [_synthetic_tile(src, 18, 4, "2020-07-03", 3)]
    target = str(tmp_path / "store")
    summary = modis.run(str(src), target)
    assert summary.published.keys() == {modis.GRID_DATASET}, summary
    ds = Publisher(target).open(modis.GRID_DATASET)
    assert [str(t)[:10] for t in ds["time"].values] == ["2020-07-01", "2020-07-03"]
    assert ds.attrs["synthetic"] == "true"
    decoded = {p: decode(p) for p in [*day1, *day2]}
    for k, paths in enumerate((day1, day2)):
        e = combine([decoded[p] for p in paths])
        got = ds.isel(time=k).load()
        compare(got, e)
        assert e["n_NDVI"].sum() > 100_000
        # nothing from the cloud block (reflectance 0.9 in it) or the dead-detector rows leaks in
        assert np.nanmax(got["MIR"].values) < 0.2 and np.nanmin(got["NDVI"].values) > 0.5
        cov = got["tile_coverage"].values
        assert np.nanmax(cov) <= 1.05 and np.nanmedian(cov) == pytest.approx(1.0, abs=0.03)
    a, b = (set((d["i"] * 720 + d["j"]).tolist()) for d in (decoded[day1[0]], decoded[day1[1]]))
    assert a & b  # cells along the curved tile boundary get pixels from both tiles


# --------------------------------------------------------------------------------- bad input
def test_bad_tiles_refused_nothing_published(modis_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    raw = (modis_dir / TILE).read_bytes()
    (bad / TILE.replace("h14v17", "h14v16")).write_bytes(raw[: len(raw) // 2])  # truncated
    shutil.copy(modis_dir / TILE, bad / TILE.replace("h14v17", "h15v17"))  # name says another tile
    shutil.copy(modis_dir / TILE, bad / "tile.hdf")  # name without product/date/tile
    empty = np.zeros((2400, 2400), np.int16)
    modis.write_tile(
        str(bad / "MOD09GA.A2008297.h14v17.006.2015181011753.hdf"),
        14,
        17,
        "2008-10-23",
        {b: empty for b in range(1, 8)},
        np.zeros((2400, 2400), np.uint32),
        np.zeros((1200, 1200), np.uint16),
        omit=("sur_refl_b06_1",),
    )
    shutil.copy(modis_dir / TILE, bad / TILE)  # one good tile: the store still must not be published
    words = {
        TILE.replace("h14v17", "h14v16"): "cannot open as HDF4",
        TILE.replace("h14v17", "h15v17"): "file name says tile h15v17 but its grid metadata is tile h14v17",
        "tile.hdf": "file name does not match",
        "MOD09GA.A2008297.h14v17.006.2015181011753.hdf": "missing SDS ['sur_refl_b06_1']",
    }
    for name, w in words.items():
        with pytest.raises(InputError, match=name.replace(".", r"\.")) as err:
            modis.scan_tile(str(bad / name))
        assert w in str(err.value)
    target = str(tmp_path / "store")
    summary = modis.run(str(bad), target)
    refused = {Path(r["file"]).name: r for r in summary.refused}
    assert set(refused) == set(words)
    for name, w in words.items():
        assert refused[name]["type"] == "InputError" and w in refused[name]["error"]
        assert name in refused[name]["error"]
    assert not summary.published
    assert Publisher(target).current(modis.GRID_DATASET) is None
    assert not (Path(target) / "catalog.yaml").exists()


# ------------------------------------------------------------------------------ site extracts
def _ornl_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return [row for row in csv.reader(f) if row]


def test_ornl_evi_matches_csv_decode(published, modis_dir: Path) -> None:
    target, _ = published
    ds = Publisher(target).open(modis.EVI_DATASET).load()
    rows = _ornl_rows(modis_dir / "ornl_subsets" / "1___MOD13Q1.asc")
    evi, rel = {}, {}
    for row in rows:
        band, adate, values = row[5].split(".")[-1], row[7], [int(x) for x in row[10:]]
        assert len(values) == int(row[0]) * int(row[1]) == 81
        date = dt.date(int(adate[1:5]), 1, 1) + dt.timedelta(days=int(adate[5:]) - 1)
        (evi if band.endswith("EVI") else rel)[date] = values
    assert list(ds["site"].values) == ["1"]
    assert float(ds["lat"][0]) == pytest.approx(51.4017666666667)
    times = [dt.date.fromisoformat(str(t)[:10]) for t in ds["time"].values]
    assert times == sorted(evi) and len(times) == 23
    n_masked = 0
    for k, date in enumerate(times):
        centre_rel = rel[date][40]  # 9 x 9 window, row-major: centre is element 4 * 9 + 4
        assert int(ds["pixel_reliability"][0, k]) == centre_rel
        raw = evi[date][40]
        got = float(ds["EVI"][0, k])
        if raw == -3000 or centre_rel not in (0, 1):
            assert np.isnan(got)
            n_masked += 1
        else:
            assert got == pytest.approx(raw * 0.0001, rel=1e-6)
            assert -0.2 <= got <= 1.0
        good = [e * 0.0001 for e, r in zip(evi[date], rel[date], strict=True) if e != -3000 and r in (0, 1)]
        assert float(ds["EVI_window_valid_fraction"][0, k]) == pytest.approx(len(good) / 81)
        assert float(ds["EVI_window_mean"][0, k]) == pytest.approx(
            np.mean(good) if good else np.nan, nan_ok=True
        )
    assert n_masked == 2  # two cloudy/snowy composites at the tower pixel
    assert ds["EVI"].attrs["units"] == "1" and ds.attrs["composite_period_days"] == 16


def test_ornl_landcover_matches_csv_decode(published, modis_dir: Path) -> None:
    target, _ = published
    ds = Publisher(target).open(modis.LANDCOVER_DATASET).load()
    rows = _ornl_rows(modis_dir / "ornl_subsets" / "1_MCD12Q1.asc")
    assert [str(t)[:4] for t in ds["time"].values] == [r[2][1:5] for r in rows]
    for k, row in enumerate(rows):
        values = [int(x) for x in row[5:]]
        assert len(values) == 25
        assert int(ds["land_cover_igbp"][0, k]) == values[12]
        assert int(ds["land_cover_igbp_window_majority"][0, k]) == max(set(values), key=values.count)
    assert "deciduous_broadleaf_forest" in ds["land_cover_igbp"].attrs["flag_meanings"]


def test_fpar_csv_matches_csv_decode(published, modis_dir: Path) -> None:
    target, _ = published
    ds = Publisher(target).open(modis.FPAR_DATASET).load()
    with open(modis_dir / "CH-Lae_MCD15A3H_gee_subset.csv", newline="") as f:
        recs = list(csv.DictReader(f))
    assert list(ds["site"].values) == ["CH-Lae"]
    assert [str(t)[:10] for t in ds["time"].values] == [r["date"] for r in recs]
    kept = 0
    for k, r in enumerate(recs):
        q = int(r["FparLai_QC"])
        ok = q & 1 == 0 and (q >> 2) & 1 == 0 and (q >> 3) & 3 in (0, 3) and (q >> 5) & 7 in (0, 1)
        ok = ok and int(r["Fpar"]) <= 100
        got = float(ds["fPAR"][0, k])
        assert int(ds["FparLai_QC"][0, k]) == q
        if ok:
            assert got == pytest.approx(int(r["Fpar"]) / 100, rel=1e-6)
            kept += 1
        else:
            assert np.isnan(got)
    assert kept == 148
    v = ds["fPAR"].values
    assert np.nanmin(v) >= 0 and np.nanmax(v) <= 1


def test_bad_site_files_refused(tmp_path: Path, modis_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    lines = (modis_dir / "ornl_subsets" / "1___MOD13Q1.asc").read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:-1])  # one value short on line 4
    (src / "7___MOD13Q1.asc").write_text("\n".join(lines) + "\n")
    rows = (modis_dir / "CH-Lae_MCD15A3H_gee_subset.csv").read_text().splitlines()
    (src / "CH-Lae_MCD15A3H_bad.csv").write_text("\n".join([rows[0].replace("Fpar,", "FPAR,"), *rows[1:]]))
    summary = modis.run(str(src), str(tmp_path / "store"))
    errors = {Path(r["file"]).name: r["error"] for r in summary.refused}
    assert (
        "line 4" in errors["7___MOD13Q1.asc"]
        and "80 values, expected 9 x 9 = 81" in errors["7___MOD13Q1.asc"]
    )
    assert "header" in errors["CH-Lae_MCD15A3H_bad.csv"] and "line 1" in errors["CH-Lae_MCD15A3H_bad.csv"]
    assert not summary.published


def test_rerun_is_up_to_date_and_catalog_lists_all(published, modis_dir: Path) -> None:
    target, first = published
    again = modis.run(str(modis_dir), target)
    assert not again.published and again.up_to_date == first.published
    import yaml

    cat = yaml.safe_load((Path(target) / "catalog.yaml").read_text())
    assert set(first.published) <= set(cat["entries"])


def test_site_stores_on_s3(s3: str, modis_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(modis_dir / "ornl_subsets", src)
    shutil.copy(modis_dir / "CH-Lae_MCD15A3H_gee_subset.csv", src)
    summary = modis.run(str(src), s3)
    assert set(summary.published) == {modis.EVI_DATASET, modis.LANDCOVER_DATASET, modis.FPAR_DATASET}
    ds = Publisher(s3).open(modis.FPAR_DATASET)
    assert int(np.isfinite(ds["fPAR"].values).sum()) == 148

"""GCB recipe: values checked against the workbooks read with openpyxl directly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fluxcube.publish import Publisher
from fluxcube.recipes import gcb

X2022 = "Global_Carbon_Budget_2022v1.0.xlsx"
X2023 = "Global_Carbon_Budget_2023v1.0.xlsx"
C2022 = "Global_Carbon_Budget_2022v1.0.csv"


def sheet_values(path: Path, year: int) -> dict[str, float]:
    """Row ``year`` of the 'Global Carbon Budget' sheet, read with openpyxl independently."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = list(wb["Global Carbon Budget"].iter_rows(values_only=True))
    wb.close()
    header = next(r for r in rows if r[0] == "Year")
    row = next(r for r in rows if r[0] == year)
    return {str(h): v for h, v in zip(header, row, strict=False) if h}


@pytest.fixture(scope="module")
def gcb_dir(data_dir: Path) -> Path:
    return data_dir / "grids" / "gcb"


def test_values_match_the_workbooks(gcb_dir: Path, tmp_path: Path) -> None:
    target = str(tmp_path / "store")
    summary = gcb.run(str(gcb_dir), target)
    assert gcb.DATASET in summary.published and not summary.refused
    ds = Publisher(target).open(gcb.DATASET).load()
    assert ds["edition"].values.tolist() == [2022, 2023]
    for edition, name, year in [
        (2022, X2022, 2021),
        (2022, X2022, 1959),
        (2023, X2023, 2022),
        (2023, X2023, 2010),
    ]:
        want = sheet_values(gcb_dir / name, year)
        got = ds.sel(edition=edition, time=f"{year}-01-01")
        assert float(got["land_sink"]) == pytest.approx(want["land sink"], abs=1e-12)
        rls = want["land sink"] + want["budget imbalance"]
        assert float(got["residual_land_sink"]) == pytest.approx(rls, abs=1e-12)
        assert float(got["land_flux_to_atmosphere"]) == pytest.approx(-rls, abs=1e-12)
    # the published numbers: GCB2022 land sink 2021 = 3.45 (3.5 +- 0.9 in the paper), imbalance -0.58
    assert float(ds["land_sink"].sel(edition=2022, time="2021-01-01")) == pytest.approx(3.45, abs=0.005)
    recent = ds["residual_land_sink"].sel(time=slice("2012", "2021")).mean("time").values
    assert np.all((recent > 2.0) & (recent < 4.0))
    assert ds["residual_land_sink"].attrs["units"] == "Pg C yr-1"
    assert "positive = source" in ds["land_flux_to_atmosphere"].attrs["long_name"]
    assert np.isnan(float(ds["land_sink"].sel(edition=2022, time="2022-01-01")))  # not in GCB2022


def test_csv_alone_and_crosscheck(gcb_dir: Path, tmp_path: Path) -> None:
    t = gcb.read_table(str(gcb_dir / C2022))
    x = gcb.read_table(str(gcb_dir / X2022))
    assert t["columns"]["land_sink"][2021] == 3.45
    assert gcb._disagreement(x, t) == ""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(gcb_dir / X2022, src / X2022)
    text = (gcb_dir / C2022).read_text(encoding="utf-8-sig").replace("\n2021,", "\n2021,").splitlines()
    row = next(i for i, line in enumerate(text) if line.startswith("2021,"))
    cells = text[row].split(",")
    cells[5] = "9.99"  # land sink 2021 tampered with
    text[row] = ",".join(cells)
    (src / C2022).write_text("\n".join(text) + "\n")
    summary = gcb.run(str(src), str(tmp_path / "store"))
    assert [Path(r["file"]).name for r in summary.refused] == [C2022]
    assert "land sink 2021: 9.99" in summary.refused[0]["error"]
    assert gcb.DATASET in summary.published


def test_bad_input_nothing_published(tmp_path: Path) -> None:
    (tmp_path / "Global_Carbon_Budget_2022v1.0.xlsx").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "Global_Carbon_Budget_2021v1.0.csv").write_text(
        "Year,fossil emissions,ocean sink\n2020,9.5,3\n"
    )
    summary = gcb.run(str(tmp_path), str(tmp_path / "store"))
    errors = {Path(r["file"]).name: r["error"] for r in summary.refused}
    assert "cannot read as an xlsx workbook" in errors["Global_Carbon_Budget_2022v1.0.xlsx"]
    assert (
        "missing column(s) ['land sink', 'budget imbalance']" in errors["Global_Carbon_Budget_2021v1.0.csv"]
    )
    assert not summary.published and Publisher(str(tmp_path / "store")).current(gcb.DATASET) is None


def test_s3_target_and_idempotent(gcb_dir: Path, s3: str) -> None:
    summary = gcb.run(str(gcb_dir), f"{s3}/fluxcube")
    version = summary.published[gcb.DATASET]
    pub = Publisher(f"{s3}/fluxcube")
    ds = pub.open(gcb.DATASET)
    assert float(ds["land_sink"].sel(edition=2022, time="2021-01-01")) == pytest.approx(3.4503, abs=1e-4)
    assert pub.root.child("catalog.yaml").exists()
    again = gcb.run(str(gcb_dir), f"{s3}/fluxcube")
    assert again.up_to_date == {gcb.DATASET: version} and not again.published

"""Benchmark: the ERA5 recipe against a plain ``xr.open_mfdataset(...).to_zarr(...)`` of the same files.

Kept for its command line; the benchmark itself is ``bench_gridded_recipes.py --recipes era5`` (see
there for what is measured and how):

    PYTHONPATH=src python benchmarks/bench_era5_recipe.py [--kinds grib netcdf] [--sizes 1 10] [--repeat N]
        [--out results.json]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_gridded_recipes import main, prepare, shifted_grib, shifted_netcdf

__all__ = ["main", "prepare", "shifted_grib", "shifted_netcdf"]

if __name__ == "__main__":
    main(["--recipes", "era5", *sys.argv[1:]])

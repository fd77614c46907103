"""FLUXNET site recipe (pangeo-forge feedstock convention: ``pattern`` and ``recipe``).

Run it with the fluxcube CLI (``fluxcube recipes run fluxnet --source DIR --target URL``), or build the
Beam pipeline yourself::

    import apache_beam as beam
    from recipes.fluxnet.recipe import make_recipe
    with beam.Pipeline() as p:
        p | make_recipe("/data/fluxnet", "s3://bucket/fluxcube")

Publication (validation, atomic switch of the catalog) happens in ``fluxcube.recipes.fluxnet_pipeline.run``;
the PTransform alone writes the stores into their (unpublished) version folders.
"""

from __future__ import annotations

import os

import apache_beam as beam

from fluxcube import config
from fluxcube.publish import Publisher
from fluxcube.recipes import fluxnet, fluxnet_pipeline

SOURCE = os.environ.get("FLUXCUBE_FLUXNET_SOURCE", str(config.data_dir() / "sites"))

#: The inputs: every FLUXNET-family file under SOURCE, one key per file.
pattern = fluxnet_pipeline.file_pattern(fluxnet.find_files(SOURCE)) if os.path.isdir(SOURCE) else None


class FluxnetRecipe(beam.PTransform):
    """Read, check, merge and write every input file into (site, time) Zarr v3 stores."""

    def __init__(self, source: str, target: str):
        super().__init__()
        self.source, self.target = source, target

    def expand(self, pbegin):
        pub = Publisher(self.target)
        plans, _, meta = fluxnet_pipeline.plan(self.source, pub, synthetic=False)
        for sp in plans:
            sp.location = pub.prepare(sp.release)
        run_dir = pub.root.child("_runs", "beam").url
        fluxnet_pipeline.build(pbegin.pipeline, plans, meta, run_dir)
        return pbegin


def make_recipe(source: str = SOURCE, target: str | None = None) -> FluxnetRecipe:
    return FluxnetRecipe(source, target or config.store_root())


recipe = make_recipe

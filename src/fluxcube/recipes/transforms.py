"""Apache Beam building blocks shared by recipes (pangeo-forge-recipes style: small, composable).

pangeo-forge-recipes' own ``StoreToZarr`` cannot write with zarr 3 (it imports ``zarr.storage.FSStore``),
so recipes use its ``FilePattern`` for inputs and these transforms for the rest.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from fluxcube.errors import InputError
from fluxcube.storage import location

log = logging.getLogger(__name__)

REFUSED = "refused"

ProgressCallback = Callable[[str, int, "int | None"], None]
_progress: ProgressCallback | None = None


@contextmanager
def progress_events(callback: ProgressCallback) -> Iterator[None]:
    """Route :func:`report` events to ``callback`` while the block runs.

    Works with runners that execute in this process (the DirectRunner's default); elsewhere the
    events are simply not seen.
    """
    global _progress
    previous, _progress = _progress, callback
    try:
        yield
    finally:
        _progress = previous


def report(event: str, advance: int = 1, total: int | None = None) -> None:
    """Tell whoever listens (a progress bar) that ``advance`` units of ``event`` work are done
    (and, when known, how many there are in all)."""
    if _progress is not None:
        _progress(event, advance, total)


def refusal(file: str, err: Exception, step: str) -> dict[str, str]:
    """A refused input as a record for the run summary."""
    return {"file": file, "step": step, "error": str(err), "type": type(err).__name__}


class MapOrRefuse(beam.DoFn):
    """Apply ``fn``; bad input (:class:`InputError`) goes to the ``refused`` output, not the floor.

    One bad file does not stop the others: its refusal, with the reason, reaches the run summary.
    """

    def __init__(self, fn: Callable[..., Any], step: str, name_of: Callable[[Any], str]):
        self.fn = fn
        self.step = step
        self.name_of = name_of

    def process(self, element, *args, **kwargs):  # no hints: Beam would type-check them
        try:
            yield self.fn(element, *args, **kwargs)
        except InputError as err:
            log.info("refused: %s", err)
            yield beam.pvalue.TaggedOutput(REFUSED, refusal(err.file, err, self.step))
        except (ValueError, OSError) as err:
            log.info("refused %s: %s", self.name_of(element), err)
            yield beam.pvalue.TaggedOutput(REFUSED, refusal(self.name_of(element), err, self.step))


class WriteRecords(beam.PTransform):
    """Write each element as one JSON file under ``folder/kind/`` (any fsspec URL)."""

    def __init__(self, folder: str, kind: str):
        super().__init__()
        self.folder = folder
        self.kind = kind

    def expand(self, pcoll):
        folder, kind = self.folder, self.kind

        def write(record: dict[str, Any]) -> None:
            loc = location(folder).child(kind, f"{uuid.uuid4().hex}.json")
            loc.fs.makedirs(loc.path.rsplit("/", 1)[0], exist_ok=True)
            loc.write_text_atomic(json.dumps(record, default=str))

        return pcoll | f"write {kind}" >> beam.Map(write)


def read_records(folder: str, kind: str) -> list[dict[str, Any]]:
    """Read back what :class:`WriteRecords` wrote."""
    loc = location(folder).child(kind)
    if not loc.exists():
        return []
    out = []
    for p in sorted(loc.fs.ls(loc.path, detail=False)):
        with loc.fs.open(p, "r") as f:
            out.append(json.load(f))
    return out


def pipeline_options(runner: str = "DirectRunner", **extra: Any) -> PipelineOptions:
    """Beam options: the DirectRunner on one machine by default (Dataflow, Flink or Spark at scale)."""
    return PipelineOptions(runner=runner, **extra)


def read_files_on_beam(
    files: list[str],
    read: Callable[[str], Any],
    run_root: Any,
    runner: str = "DirectRunner",
    flatten: Callable[[Any], list[dict[str, Any]]] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Read each file with ``read(url) -> record`` on a Beam pipeline; return (records, refusals).

    The inputs are a pangeo-forge ``FilePattern`` (one key per file). Bad files (:class:`InputError`)
    become refusals with their reason instead of stopping the run. ``flatten`` turns one file's result
    into several records (e.g. the members of an ensemble file). Records travel through a scratch folder
    under ``run_root`` (a :class:`~fluxcube.storage.Location`, usually ``<target>/_runs``), removed after.
    """
    from pangeo_forge_recipes.patterns import ConcatDim, FilePattern

    pattern = FilePattern(lambda file: file, ConcatDim("file", keys=list(files)))
    run_dir = run_root.child(uuid.uuid4().hex[:12])
    try:
        with beam.Pipeline(options=pipeline_options(runner)) as p:
            out = (
                p
                | "files" >> beam.Create(list(pattern.items()))
                | "read"
                >> beam.ParDo(MapOrRefuse(lambda item: read(item[1]), "read", lambda e: e[1])).with_outputs(
                    REFUSED, main="ok"
                )
            )
            records = out.ok | "flatten" >> beam.FlatMap(flatten) if flatten else out.ok
            _ = records | "records" >> WriteRecords(run_dir.url, "records")
            _ = out[REFUSED] | "refusals" >> WriteRecords(run_dir.url, "refused")
        return read_records(run_dir.url, "records"), sorted(
            read_records(run_dir.url, "refused"), key=lambda r: r["file"]
        )
    finally:
        run_dir.remove()


def inputs_are_synthetic(files: list[str]) -> bool:
    """Whether any input comes from fluxcube's simulator (a ``SYNTHETIC.json`` beside it)."""
    from pathlib import Path

    return any(Path(f).parent.joinpath("SYNTHETIC.json").exists() for f in files)

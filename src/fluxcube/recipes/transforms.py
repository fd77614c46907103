"""Apache Beam building blocks shared by recipes (pangeo-forge-recipes style: small, composable).

pangeo-forge-recipes' own ``StoreToZarr`` cannot write with zarr 3 (it imports ``zarr.storage.FSStore``),
so recipes use its ``FilePattern`` for inputs and these transforms for the rest.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from fluxcube.errors import InputError
from fluxcube.storage import Location, location

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


def current_progress() -> ProgressCallback | None:
    """The callback :func:`report` events go to now (None: nobody listens)."""
    return _progress


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

    def infer_output_type(self, input_type):
        # records of any type; without this Beam infers it from the bytecode of ``fn`` and of every
        # function it calls (0.1-0.4 s per pipeline) to find Any anyway
        return beam.typehints.Any

    def process(self, element, *args, **kwargs):  # no hints: Beam would type-check them
        try:
            yield self.fn(element, *args, **kwargs)
        except InputError as err:
            log.info("refused: %s", err)
            yield beam.pvalue.TaggedOutput(REFUSED, refusal(err.file, err, self.step))
        except (ValueError, OSError) as err:
            log.info("refused %s: %s", self.name_of(element), err)
            yield beam.pvalue.TaggedOutput(REFUSED, refusal(self.name_of(element), err, self.step))


class _WriteBatches(beam.DoFn):
    """Buffer the elements of a bundle and write them as one JSON-lines file per bundle (or per
    :data:`RECORDS_PER_FILE` elements): one write instead of one per element (each write costs a few
    milliseconds locally, more on object storage)."""

    def __init__(self, folder: str, kind: str):
        self.folder = folder
        self.kind = kind

    def infer_output_type(self, input_type):
        return beam.typehints.Any  # outputs nothing; skips Beam's bytecode inference

    def start_bundle(self):
        self._batch: list[str] = []

    def process(self, record):  # no hints: Beam would type-check them
        self._batch.append(json.dumps(record, default=str))
        if len(self._batch) >= RECORDS_PER_FILE:
            self._flush()

    def finish_bundle(self):
        self._flush()

    def _flush(self) -> None:
        if not self._batch:
            return
        loc = location(self.folder).child(self.kind, f"{uuid.uuid4().hex}.jsonl")
        _write_scratch(loc, "\n".join(self._batch) + "\n")
        self._batch = []


def _write_scratch(loc: Location, text: str) -> None:
    """Write a scratch file whole (a temporary sibling renamed into place locally, one PUT on object
    storage), without the fsync of :meth:`Location.write_text_atomic`: scratch records live only for
    the run (a crash loses the run anyway), and an fsync per file costs milliseconds to tens of
    milliseconds on a busy disk."""
    if loc.is_local:
        os.makedirs(os.path.dirname(loc.path), exist_ok=True)
        tmp = f"{loc.path}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, loc.path)
    else:
        loc.fs.pipe_file(loc.path, text.encode())


#: Records per file written by :class:`WriteRecords` (at most; one file per bundle when fewer).
RECORDS_PER_FILE = 1000


class WriteRecords(beam.PTransform):
    """Write the elements (JSON-able records) as JSON-lines files under ``folder/kind/`` (any fsspec URL),
    one file per bundle; :func:`read_records` reads them back."""

    def __init__(self, folder: str, kind: str):
        super().__init__()
        self.folder = folder
        self.kind = kind

    def expand(self, pcoll):
        return pcoll | f"write {self.kind}" >> beam.ParDo(_WriteBatches(self.folder, self.kind))


def read_records(folder: str, kind: str) -> list[dict[str, Any]]:
    """Read back what :class:`WriteRecords` wrote (files in name order, records in file order)."""
    loc = location(folder).child(kind)
    if not loc.exists():
        return []
    out = []
    for p in sorted(loc.fs.ls(loc.path, detail=False)):
        if not p.endswith((".jsonl", ".json")):  # a temporary file left by an interrupted write
            continue
        with loc.fs.open(p, "r") as f:
            if p.endswith(".jsonl"):
                out.extend(json.loads(line) for line in f if line.strip())
            else:
                out.append(json.load(f))
    return out


#: The runner that ``"DirectRunner"`` means here: Beam's portable FnApiRunner, in this process.
IN_PROCESS_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"


def in_process(runner: str) -> bool:
    """Whether ``runner`` runs the pipeline in this process (the DirectRunner or the FnApiRunner)."""
    return runner in ("DirectRunner", "FnApiRunner", IN_PROCESS_RUNNER)


def create(values: list[Any], runner: str) -> beam.Create:
    """``beam.Create(values)``; Create's reshuffle (which spreads the elements over workers) only where
    there are other workers: in this process it adds a GroupByKey for nothing."""
    return beam.Create(values, reshuffle=not in_process(runner))


def pipeline_options(runner: str = "DirectRunner", **extra: Any) -> PipelineOptions:
    """Beam options: in this process by default (Dataflow, Flink or Spark at scale).

    ``"DirectRunner"`` runs on Beam's FnApiRunner directly: the engine the DirectRunner itself picks for
    batch pipelines, without the DirectRunner's per-run support checks and pipeline round trip (about
    0.3 s per pipeline). The options never parse ``sys.argv`` (a command line's own arguments are not
    Beam flags).
    """
    if in_process(runner):
        runner = IN_PROCESS_RUNNER
    return PipelineOptions(flags=[], runner=runner, **extra)


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
                | "files" >> create(list(pattern.items()), runner)
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

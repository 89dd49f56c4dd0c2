"""Per-group count sums over cell chunks: a sparse one-hot (group x cell) matrix times each chunk, reduced on Dask."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import dask
import numpy as np
import scipy.sparse as sp
from dask.callbacks import Callback
from dask.delayed import Delayed

from perturb_core.errors import DataError

__all__ = ["GroupSums", "chunk_sums", "group_sums", "merge_sums", "scheduler_client"]

Progress = Callable[[int, int], None]
_SPLIT_EVERY = 4  # partial results merged per tree node


@dataclass(frozen=True)
class GroupSums:
    """Count sums of the groups present in some cells.

    Attributes:
        groups: sorted group codes present.
        sums: (len(groups), n_genes) float64 count sums (exact for integer counts below 2**53).
        library: (len(groups),) summed counts over ALL genes of the file (also with a gene subset).
        n_nonint: stored values that are not whole numbers.
        n_negative: stored values below zero.
        log_sums, log_squares: per-group sums of each cell's ``log1p(1e4 * x / cell library)`` and of its
            square (for the cell-level test of DE calls); ``None`` unless asked for.
    """

    groups: np.ndarray
    sums: np.ndarray
    library: np.ndarray
    n_nonint: int
    n_negative: int
    log_sums: np.ndarray | None = None
    log_squares: np.ndarray | None = None


def _cell_log_norm(block: sp.csr_matrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    """Each cell's ``log1p(1e4 * x / library)`` (zeros stay zero, so CSR stays sparse)."""
    lib = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(1e4, lib, out=np.zeros_like(lib), where=lib > 0)
    if sp.issparse(block):
        out = block.astype(np.float64)
        out.data = np.log1p(out.data * np.repeat(scale, np.diff(out.indptr)))
        return out
    return np.log1p(block * scale[:, None])


def chunk_sums(
    block: sp.spmatrix | np.ndarray,
    codes: np.ndarray,
    cell_stats: bool = False,
    columns: np.ndarray | None = None,
) -> GroupSums:
    """Sums of one chunk of cells by group: ``onehot(groups x cells) @ block``.

    Args:
        block: (cells, genes) counts, CSR or dense.
        codes: (cells,) group code of each cell (-1 = cell not used).
        cell_stats: also sum each cell's log-normalised values and their squares (for DE calls).
        columns: keep only these gene columns (libraries still count every gene).
    """
    keep = codes >= 0
    present, local = np.unique(codes[keep], return_inverse=True)
    cols = np.flatnonzero(keep)
    onehot = sp.csr_matrix((np.ones(len(cols)), (local, cols)), shape=(len(present), len(codes)))
    block = sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)
    values = block.data if sp.issparse(block) else block
    if np.issubdtype(values.dtype, np.integer):
        nonint = 0
    else:
        nonint = int(np.count_nonzero(values != np.round(values)))
    negative = int(np.count_nonzero(values < 0))
    library = onehot @ np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
    dense = (lambda m: m.toarray()) if sp.issparse(block) else np.asarray
    log_sums = log_squares = None
    if cell_stats:
        y = _cell_log_norm(block)  # per-cell libraries over every gene, before the subset
        if columns is not None:
            y = y[:, columns]
        y2 = y.multiply(y) if sp.issparse(y) else y * y
        log_sums, log_squares = dense(onehot @ y), dense(onehot @ y2)
    if columns is not None:
        block = block[:, columns]
    sums = dense(onehot @ block.astype(np.float64))
    return GroupSums(present, sums, library, nonint, negative, log_sums, log_squares)


def merge_sums(*parts: GroupSums) -> GroupSums:
    """Add partial sums (union of their groups)."""
    groups = np.unique(np.concatenate([p.groups for p in parts]))
    fields = ["sums"] + (["log_sums", "log_squares"] if parts[0].log_sums is not None else [])
    out = {f: np.zeros((len(groups), parts[0].sums.shape[1])) for f in fields}
    library = np.zeros(len(groups))
    for p in parts:
        rows = np.searchsorted(groups, p.groups)
        library[rows] += p.library
        for f in fields:
            out[f][rows] += getattr(p, f)
    return GroupSums(
        groups,
        out["sums"],
        library,
        sum(p.n_nonint for p in parts),
        sum(p.n_negative for p in parts),
        out.get("log_sums"),
        out.get("log_squares"),
    )


def _tree(leaves: list[Delayed]) -> Delayed:
    level = leaves
    while len(level) > 1:
        level = [
            dask.delayed(merge_sums, pure=True)(*level[i : i + _SPLIT_EVERY])
            for i in range(0, len(level), _SPLIT_EVERY)
        ]
    return level[0]


def _graph(
    counts: Sequence, codes: Sequence[np.ndarray], cell_stats: bool, columns: np.ndarray | None
) -> Delayed:
    """One tree reduction over the chunks of every file (``counts``: Dask arrays chunked along cells)."""
    leaves = []
    for x, c in zip(counts, codes, strict=True):
        bounds = np.cumsum((0, *x.chunks[0]))
        for k, blk in enumerate(x.to_delayed().ravel()):
            part = c[bounds[k] : bounds[k + 1]]
            leaves.append(dask.delayed(chunk_sums, pure=True)(blk, part, cell_stats, columns))
    return _tree(leaves)


class _CountTasks(Callback):
    def __init__(self, total: int, progress: Progress) -> None:
        super().__init__()
        self.total, self.done, self.progress = total, 0, progress

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        self.done += 1
        self.progress(self.done, self.total)


def _distributed_progress(client, future, progress: Progress) -> None:
    """Report a distributed computation's progress (dask's TextProgressBar, drawn through ``progress``).

    ``_draw_bar`` is distributed's hook for drawing; tests/pseudobulk checks it is still called.
    """
    from distributed.diagnostics.progressbar import TextProgressBar

    class _Bar(TextProgressBar):
        def _draw_bar(self, remaining: int, all: int, **kwargs: object) -> None:
            progress(all - remaining, all)

        def _draw_stop(self, **kwargs: object) -> None:
            pass

    _Bar([future], scheduler=client.scheduler.address, interval="200ms", complete=True)


@contextlib.contextmanager
def scheduler_client(
    scheduler: str, *, n_workers: int = 2, processes: bool = True
) -> Iterator[object | None]:
    """A distributed client for ``local`` (a LocalCluster) or ``tcp://HOST:PORT``; ``None`` for ``synchronous``.

    Raises:
        DataError: the scheduler address does not answer.
    """
    if scheduler == "synchronous":
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with (
            LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise DataError(
            f"no Dask scheduler answers at {scheduler!r} ({exc}); start one with `dask scheduler` (it prints "
            "its tcp:// address) and `dask worker ADDRESS`, or use --scheduler local"
        ) from exc
    with client:
        yield client


def group_sums(
    counts: Sequence,
    codes: Sequence[np.ndarray],
    *,
    client: object | None = None,
    progress: Progress | None = None,
    cell_stats: bool = False,
    columns: np.ndarray | None = None,
) -> GroupSums:
    """Sum counts by group over every chunk of every file.

    Args:
        counts: per file, a Dask array (cells x genes) chunked along cells only.
        codes: per file, the group code of each cell (-1 = skip the cell).
        client: a ``distributed.Client`` (``None``: the synchronous scheduler, in this process).
        progress: called with (tasks done, tasks in total).
        cell_stats: also sum per-cell log-normalised values and squares (for DE calls).
        columns: keep only these gene columns (libraries still count every gene).
    """
    final = _graph(counts, codes, cell_stats, columns)
    if client is None:
        cb = _CountTasks(len(final.__dask_graph__()), progress) if progress else contextlib.nullcontext()
        with cb:
            (out,) = dask.compute(final, scheduler="synchronous")
        return out
    future = client.compute(final)
    if progress is not None:
        _distributed_progress(client, future, progress)
    try:
        return future.result()
    except (OSError, KeyError) as exc:
        raise DataError(
            f"a Dask worker could not read the input ({exc}); workers must see the input files at the same path "
            "(shared filesystem)"
        ) from exc

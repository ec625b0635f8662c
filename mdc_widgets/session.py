"""The state of one MAD investigation, driven by the widgets and usable from plain scripts.

A :class:`Session` ties a pool to a prediction store and remembers what was
done on it: which models predicted, the (cached) pairwise discrepancies, the
mining results, the human verdicts. Every widget action is one method call
here, so anything a notebook user clicks can be replayed in a script::

    session = Session("miniworld", "runs/demo")
    session.predict(["mw_unet_ss", "mw_fcn_ss"])
    result = session.mine(CompetitionGroup(ss=("mw_unet_ss", "mw_fcn_ss")), Weights(1, 0, 0), k=20)
    session.ranked_table(result, filters="occlusion > 0.3").head()
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.config import cache_dir, resolve_device
from mdc_widgets.errors import MdcError, UnknownModelError
from mdc_widgets.labeling import Label, LabelStore
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, load_mining, thumbnail_features
from mdc_widgets.mining import mine as mine_pool

__all__ = ["Session", "filter_table", "group_of", "group_pairs"]

Filter = str | tuple | Mapping[str, Any]
_OPS = ("==", "!=", "<=", ">=", "<", ">", "=", "~", "not in", "in", "contains")
_CLAUSE = re.compile(
    r"^\s*(?P<neg>not\s+)?(?P<col>[A-Za-z_][\w.]*)\s*"
    r"(?:(?P<op>==|!=|<=|>=|<|>|=|~|\bnot\s+in\b|\bin\b|\bcontains\b)\s*(?P<value>.+?))?\s*$"
)


# ----------------------------------------------------------------------------------------------
# pure helpers
# ----------------------------------------------------------------------------------------------
def group_of(result: xr.Dataset) -> CompetitionGroup:
    """The competition group a mining result was made for (from its attrs)."""
    ss = result.attrs.get("group_ss", [])
    sod = result.attrs.get("group_sod", [])
    ss = json.loads(ss) if isinstance(ss, str) else list(ss)
    sod = json.loads(sod) if isinstance(sod, str) else list(sod)
    return CompetitionGroup(ss=tuple(str(m) for m in ss), sod=tuple(str(m) for m in sod))


def group_pairs(group: CompetitionGroup) -> list[tuple[str, str, str]]:
    """The compared pairs of a group as ``(model_a, model_b, kind)``: SS pair, SOD pair, cross pairs.

    Examples
    --------
    >>> group_pairs(CompetitionGroup(ss=("a", "b"), sod=("p",)))
    [('a', 'b', 'ss'), ('a', 'p', 'cross'), ('b', 'p', 'cross')]
    """
    pairs = [(a, b, task) for task in ("ss", "sod") for a, b in group.intra_pairs(task)]
    pairs += [(a, b, "cross") for a, b in group.cross_pairs]
    return pairs


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text.strip()


def _clause_mask(frame: pd.DataFrame, column: str, op: str | None, value: Any, negate: bool = False) -> np.ndarray:
    if column not in frame:
        raise MdcError(f"Cannot filter on {column!r}: no such column. Columns: {', '.join(map(str, frame.columns))}.")
    series = frame[column]
    op = "==" if op == "=" else (op or "truthy").strip()
    op = re.sub(r"\s+", " ", op)
    if op == "truthy":
        mask = series.fillna(False).astype(bool).to_numpy()
    elif op in ("in", "not in"):
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        mask = series.isin(values).to_numpy() | series.astype(str).isin([str(v) for v in values]).to_numpy()
        mask = ~mask if op == "not in" else mask
    elif op in ("~", "contains"):
        mask = series.astype(str).str.contains(str(value), case=False, regex=False).to_numpy()
    elif op in ("==", "!="):
        if isinstance(value, str) and not pd.api.types.is_string_dtype(series) and series.dtype != object:
            raise MdcError(f"Column {column!r} holds numbers; compare it with a number, not {value!r}.")
        equal = (series.astype(str) == value).to_numpy() if isinstance(value, str) else (series == value).to_numpy()
        mask = equal if op == "==" else ~equal
    elif op in ("<", "<=", ">", ">="):
        try:
            numbers = pd.to_numeric(series, errors="raise")
            threshold = float(value)
        except (TypeError, ValueError) as exc:
            raise MdcError(f"{column} {op} {value!r}: both sides must be numbers.") from exc
        mask = {
            "<": numbers < threshold,
            "<=": numbers <= threshold,
            ">": numbers > threshold,
            ">=": numbers >= threshold,
        }[op].to_numpy()
    else:
        raise MdcError(f"Unknown filter operator {op!r}; use one of {', '.join(_OPS)}.")
    return ~mask if negate else mask


def filter_table(frame: pd.DataFrame, filters: Filter | Sequence[Filter] | None) -> pd.DataFrame:
    """Rows of ``frame`` that pass every filter.

    A filter is a text expression (clauses joined by ``and`` or ``&``: ``column
    op value`` with op in ``== != < <= > >= in, not in, contains (~)``, a bare
    ``column`` for true values, ``not column``), a ``(column, op, value)``
    tuple, or a ``{column: value}`` mapping (equality; a list means "in").
    Values are read as YAML scalars (``0.5``, ``true``, ``[1, 2]``, ``cat``).

    Examples
    --------
    >>> t = pd.DataFrame({"score": [0.9, 0.2, 0.7], "name": ["cat", "dog", "cow"], "selected": [True, False, True]})
    >>> filter_table(t, "score > 0.5 and name ~ c")["name"].tolist()
    ['cat', 'cow']
    >>> filter_table(t, [("name", "in", ["dog", "cow"]), "not selected"])["name"].tolist()
    ['dog']
    """
    if filters is None or (isinstance(filters, str) and not filters.strip()):
        return frame
    if isinstance(filters, (str, tuple, Mapping)):
        filters = [filters]
    mask = np.ones(len(frame), bool)
    for item in filters:
        if isinstance(item, Mapping):
            for column, value in item.items():
                mask &= _clause_mask(frame, str(column), "in" if isinstance(value, (list, tuple, set)) else "==", value)
        elif isinstance(item, tuple):
            if len(item) != 3:
                raise MdcError(f"A filter tuple is (column, op, value); got {item!r}.")
            mask &= _clause_mask(frame, str(item[0]), str(item[1]), item[2])
        elif isinstance(item, str):
            for clause in re.split(r"\s+and\s+|\s*&\s*", item.strip()):
                if not clause.strip():
                    continue
                match = _CLAUSE.match(clause)
                if match is None:
                    raise MdcError(
                        f"Cannot read the filter {clause!r}; write 'column op value' (e.g. 'score > 0.5', "
                        "'dominant_class in [1, 2]', 'path ~ beach') or a bare column name."
                    )
                value = _parse_value(match["value"]) if match["value"] is not None else None
                mask &= _clause_mask(frame, match["col"], match["op"], value, negate=bool(match["neg"]))
        else:
            raise MdcError(f"A filter is a text, a (column, op, value) tuple or a mapping; got {type(item).__name__}.")
    return frame[mask]


def _components(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected groups of models (models that were compared, directly or through others)."""
    parent: dict[str, str] = {}

    def find(m: str) -> str:
        parent.setdefault(m, m)
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for m in sorted(parent):
        groups.setdefault(find(m), []).append(m)
    return list(groups.values())


def _at_native_aspect(detail: dict[str, Any], pool: Any, index: int) -> dict[str, Any]:
    """The detail's pictures cropped to the image's content (letterbox) and shown at its own aspect ratio.

    Images and overlays are resized bilinearly, maps (labels, saliency,
    disagreement) with nearest neighbour, so no value is invented.
    """
    from mdc_widgets.data.io import content_box, resize_image, resize_mask

    canvas = tuple(int(s) for s in pool.image_size)
    native = pool.native_size(index) if hasattr(pool, "native_size") else canvas
    y0, y1, x0, x1 = content_box(native, canvas, getattr(pool, "fit", "stretch"))
    side = max(canvas)
    scale = side / max(native)
    shown = (max(1, round(native[0] * scale)), max(1, round(native[1] * scale)))
    if (y0, y1, x0, x1) == (0, canvas[0], 0, canvas[1]) and shown == canvas:
        return detail

    def picture(array: np.ndarray) -> np.ndarray:
        return resize_image(np.ascontiguousarray(array[y0:y1, x0:x1]), shown)

    def values(array: np.ndarray) -> np.ndarray:
        crop = np.ascontiguousarray(array[y0:y1, x0:x1])
        if crop.dtype.kind == "f":  # PIL has no float nearest resize for every dtype: index instead
            rows = np.minimum((np.arange(shown[0]) * crop.shape[0] / shown[0]).astype(int), crop.shape[0] - 1)
            cols = np.minimum((np.arange(shown[1]) * crop.shape[1] / shown[1]).astype(int), crop.shape[1] - 1)
            return crop[rows][:, cols]
        return resize_mask(crop, shown)

    def view(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "map": values(entry["map"]), "overlay": picture(entry["overlay"])}

    detail = dict(detail)
    detail["image"] = picture(detail["image"])
    detail["predictions"] = {m: view(v) for m, v in detail["predictions"].items()}
    detail["disagreement"] = {k: view(v) for k, v in detail["disagreement"].items()}
    if detail.get("ground_truth"):
        detail["ground_truth"] = {
            k: (view(v) if isinstance(v, dict) and "map" in v else v) for k, v in detail["ground_truth"].items()
        }
    return detail


# ----------------------------------------------------------------------------------------------
# the session
# ----------------------------------------------------------------------------------------------
class Session:
    """One pool, one prediction store, and everything done on them.

    Parameters
    ----------
    pool : a Pool, or anything :func:`mdc_widgets.data.open_pool` accepts
        (``"miniworld"``, ``"skimage"``, a folder of photos, ...)
    store : folder of the predictions (default: ``<cache>/sessions/<pool fingerprint>``)
    models : competitors (objects) or registered names the session offers
        besides the registry (e.g. your own wrapped models)
    labels : a :class:`LabelStore` or its path (default ``<store>/labels.jsonl``)
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``
    use_registry : offer every registered model (``list_models``) as well
    maps : folders of released maps that compete like models,
        ``{name: folder}`` (saliency) or ``{name: (folder, "ss", classes)}``
    pool_options : passed to ``open_pool`` when ``pool`` is not a Pool
        (``image_size``, ``fit``, ``ground_truth={"saliency": DIR}``, ...)
    """

    def __init__(
        self,
        pool: Any,
        store: str | Path | None = None,
        *,
        models: Sequence[Any] = (),
        labels: LabelStore | str | Path | None = None,
        device: str = "auto",
        use_registry: bool = True,
        maps: dict[str, Any] | None = None,
        **pool_options: Any,
    ):
        if not hasattr(pool, "read_images"):
            from mdc_widgets.data import open_pool

            pool = open_pool(pool, **pool_options)
        self.pool = pool
        self.store = Path(store) if store is not None else cache_dir() / "sessions" / str(pool.fingerprint)
        self.store.mkdir(parents=True, exist_ok=True)
        self.labels = (
            labels
            if isinstance(labels, LabelStore)
            else LabelStore(labels or self.store / "labels.jsonl", sample_ids=pool.sample_ids)
        )
        self.device = device
        self.use_registry = use_registry
        self.results: dict[str, xr.Dataset] = {}
        self.current_key: str | None = None
        self._competitors: dict[str, Any] = {}
        if maps:
            from mdc_widgets.models import MapCompetitor

            models = list(models) + [
                MapCompetitor(name, *((spec,) if isinstance(spec, (str, Path)) else spec))
                for name, spec in maps.items()
            ]
        for model in models:
            if isinstance(model, str):
                self._competitors.setdefault(model, None)
            else:
                self._competitors[model.name] = model
        self._predictions: xr.Dataset | None = None
        self._discrepancy: dict[tuple, xr.DataArray] = {}
        self._features: np.ndarray | None = None
        self._ground_truth: Any = ...
        self._metadata: pd.DataFrame | None = None
        self._evaluation: dict[tuple[str, ...], xr.Dataset] = {}
        self._index = {str(s): i for i, s in enumerate(pool.sample_ids)}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"Session(pool={getattr(self.pool, 'name', '?')!r}, n={len(self.pool)}, store={str(self.store)!r}, "
            f"predicted={self.predicted_models()}, results={list(self.results)}, labels={len(self.labels)})"
        )

    # -- models ----------------------------------------------------------------------------
    def _stored(self) -> dict[str, dict[str, Any]]:
        """What each ``<store>/<model>.zarr`` holds: task, classes, complete, made for this pool."""
        import zarr

        from mdc_widgets.predictions.store import damaged_chunks

        found = {}
        for path in sorted(self.store.glob("*.zarr")):
            try:
                group = zarr.open_group(str(path), mode="r")
                attrs = dict(group.attrs)
                # a damaged chunk is unfinished work: predicting again recomputes it
                done = bool(np.asarray(group["chunk_done"][:]).all()) and not damaged_chunks(path)
            except Exception:  # an unreadable store is offered for recomputation, not fatal here
                continue
            found[path.name[: -len(".zarr")]] = {
                "task": attrs.get("task"),
                "classes": list(attrs.get("classes", [])),
                "complete": done,
                "this_pool": attrs.get("pool_fingerprint") == self.pool.fingerprint,
            }
        return found

    def predicted_models(self, task: str | None = None) -> list[str]:
        """Models whose predictions of this pool are complete in the store (SS first, then SOD)."""
        stored = self._stored()
        names = [
            n for n, s in stored.items() if s["complete"] and s["this_pool"] and (task is None or s["task"] == task)
        ]
        return sorted(names, key=lambda n: (stored[n]["task"] != "ss", n))

    def model_task(self, name: str) -> str:
        """``"ss"`` or ``"sod"`` of a model the session knows (predicted, offered or registered)."""
        comp = self._competitors.get(name)
        if comp is not None:
            return comp.task
        stored = self._stored().get(name)
        if stored and stored["task"]:
            return stored["task"]
        from mdc_widgets.models import model_spec

        return model_spec(name).task

    def available_models(self, task: str | None = None) -> list[str]:
        """Every model the session can compete: predicted, offered at construction, and registered."""
        names = list(self.predicted_models(task))
        for name in self._competitors:
            if name not in names and (task is None or self.model_task(name) == task):
                names.append(name)
        if self.use_registry:
            from mdc_widgets.models import list_models

            names += [n for n in list_models(task) if n not in names]
        return names

    def add_maps(
        self,
        name: str,
        folder: str | Path,
        task: str = "sod",
        classes: Sequence[str] | None = None,
        errors: str = "raise",
    ) -> Any:
        """Offer a folder of released maps as the competitor ``name`` (checked against this pool at once).

        Raises ``MdcError`` naming the folder, the name or the bad maps; nothing
        is offered then.
        """
        from mdc_widgets.models import MapCompetitor

        name = str(name).strip()
        if not name:
            raise MdcError("Give the released maps a name (it becomes the model's name).")
        if name in self.available_models():
            raise MdcError(f"A model named {name!r} exists already; choose another name.")
        competitor = MapCompetitor(name, folder, task, classes, errors=errors)
        competitor.check_pool(self.pool)
        self._competitors[name] = competitor
        return competitor

    def competitor(self, name: str) -> Any:
        """The competitor object of ``name`` (built from the registry on first use)."""
        comp = self._competitors.get(name)
        if comp is None:
            from mdc_widgets.models import get_model

            comp = get_model(name, device=resolve_device(self.device))
            self._competitors[name] = comp
        return comp

    # -- predictions -----------------------------------------------------------------------
    def predict(
        self,
        models: Sequence[Any],
        device: str | None = None,
        progress: bool | Callable[[int, int], None] = False,
        cancel: threading.Event | Callable[[], bool] | None = None,
        *,
        overwrite: bool = False,
        **options: Any,
    ) -> xr.Dataset:
        """Run the models that have no complete predictions of this pool yet; returns every prediction.

        Models already predicted are skipped (their competitor is not even
        built). An interrupted or cancelled run keeps its finished chunks and
        resumes there next time. ``progress`` and ``cancel`` go to
        :func:`mdc_widgets.predictions.predict_pool`, as do ``options``
        (``batch_size``, ``chunk_size``, ``amp``, ...).
        """
        from mdc_widgets.predictions import predict_pool

        device = resolve_device(device or self.device)
        done = set(self.predicted_models()) if not overwrite else set()
        todo = []
        for model in models:
            name = model if isinstance(model, str) else model.name
            if not isinstance(model, str):
                self._competitors[name] = model
            if name in done:
                continue
            todo.append(self._competitors.get(name) or model)
        if todo:
            todo = [m if not isinstance(m, str) else self.competitor(m) for m in todo]
            try:
                predict_pool(
                    self.pool,
                    todo,
                    self.store,
                    device=device,
                    progress=progress,
                    cancel=cancel,
                    overwrite=overwrite,
                    **options,
                )
            finally:
                # even a cancelled run may have finished some models
                self._reset_predictions()
        return self.predictions

    def _reset_predictions(self) -> None:
        with self._lock:
            self._predictions = None
            self._evaluation.clear()

    @property
    def predictions(self) -> xr.Dataset:
        """Every complete prediction of this pool in the store (``open_predictions``), opened once."""
        with self._lock:
            if self._predictions is None:
                from mdc_widgets.predictions import open_predictions

                names = self.predicted_models()
                if not names:
                    raise MdcError(
                        f"No predictions of pool {getattr(self.pool, 'name', '?')!r} in {self.store} yet; "
                        "call session.predict([...model names...]) first."
                    )
                self._predictions = open_predictions(self.store, names)
            return self._predictions

    def _require(self, models: Iterable[str]) -> None:
        missing = [m for m in models if m not in self.predicted_models()]
        if missing:
            raise MdcError(f"Models {missing} have no predictions of this pool yet; call session.predict({missing}).")

    def discrepancy(self, sod_measure: str = "iou") -> xr.DataArray:
        """Pairwise discrepancies ``(sample, model_a, model_b)`` of every predicted model, cached."""
        predictions = self.predictions
        key = (tuple(str(m) for m in predictions["model"].values), sod_measure)
        with self._lock:
            if key not in self._discrepancy:
                from mdc_widgets.discrepancy import compute_discrepancies

                self._discrepancy[key] = compute_discrepancies(predictions, sod_measure=sod_measure, device=self.device)
            return self._discrepancy[key]

    def features(self) -> np.ndarray:
        """Thumbnail features of the pool's images (for near-duplicate suppression), computed once."""
        with self._lock:
            if self._features is None:
                n, step = len(self.pool), 1024
                blocks = [
                    thumbnail_features(self.pool.read_images(lo, min(lo + step, n))[0]) for lo in range(0, n, step)
                ]
                self._features = np.concatenate(blocks) if blocks else np.zeros((0, 64), np.float32)
            return self._features

    # -- mining ----------------------------------------------------------------------------
    def mine(
        self,
        group: CompetitionGroup,
        weights: Weights = Weights(),
        k: int = 50,
        constraints: Constraints = Constraints(),
        key: str | None = None,
        *,
        disjoint: bool = False,
        sod_measure: str = "iou",
        save: bool = True,
        protocol: str = "mdc",
        fusion: str = "rank",
    ) -> xr.Dataset:
        """Score the pool for ``group`` and select the top ``k``; the result is remembered and stored.

        With ``disjoint`` no sample already selected by another result of this
        session is selected again. ``protocol`` and ``fusion`` are those of
        :func:`mdc_widgets.mining.mine`.
        """
        self._require(group.models)
        # the same default key as mining.mine, so re-mining a group replaces its own result
        if key is None:
            key = f"{group.key}__w{weights.ss:g}-{weights.sod:g}-{weights.cross:g}__k{k}"
            key += "" if (protocol, fusion) == ("mdc", "rank") else f"__{protocol}-{fusion}"
        if disjoint:
            taken = {
                s
                for name, r in self.results.items()
                if name != key
                for s in r["sample"].values[r["selected"].values].astype(str)
            }
            constraints = Constraints(**{**constraints.as_dict(), "exclude": frozenset(constraints.exclude | taken)})
        # the ijcv2021 rule has no near-duplicate suppression
        features = self.features() if constraints.dedup_threshold is not None and protocol == "mdc" else None
        result = mine_pool(
            self.predictions,
            group,
            weights,
            k,
            constraints,
            discrepancy=self.discrepancy(sod_measure),
            features=features,
            sod_measure=sod_measure,
            key=key,
            store=self.store,
            save=save,
            protocol=protocol,
            fusion=fusion,
        )
        result.attrs["disjoint"] = bool(disjoint)
        with self._lock:
            self.results[result.attrs["key"]] = result
            self.current_key = result.attrs["key"]
        return result

    def result(self, result: str | xr.Dataset | None = None) -> xr.Dataset:
        """A mining result: the given one, one by key (remembered or stored), or the latest."""
        if isinstance(result, xr.Dataset):
            return result
        key = result or self.current_key
        if key is None:
            raise MdcError("No mining result yet; call session.mine(group, weights, k) first.")
        if key not in self.results:
            self.results[key] = load_mining(self.store, key)
        return self.results[key]

    # -- tables ----------------------------------------------------------------------------
    def metadata(self) -> pd.DataFrame:
        """The pool's per-sample metadata (nuisance factors, paths, ...) as a frame indexed by sample."""
        if self._metadata is None:
            ids = pd.Index([str(s) for s in self.pool.sample_ids], name="sample")
            meta = self.pool.metadata() if hasattr(self.pool, "metadata") else None
            if meta is not None and len(meta.data_vars):
                frame = meta.to_dataframe()
                frame.index = frame.index.astype(str)
                frame = frame.reindex(ids)
            else:
                frame = pd.DataFrame(index=ids)
            frame.index.name = "sample"
            classes = getattr(self.pool, "classes", None)
            if classes and "dominant_class" in frame:
                frame["dominant_class_name"] = [
                    classes[int(c)] if 0 <= int(c) < len(classes) else str(c) for c in frame["dominant_class"].fillna(0)
                ]
            self._metadata = frame
        return self._metadata

    def ranked_table(
        self,
        result: str | xr.Dataset | None = None,
        sort_by: str = "score",
        filters: Filter | Sequence[Filter] | None = None,
        ascending: bool = False,
    ) -> pd.DataFrame:
        """One row per sample of the pool: rank, scores, raw discrepancies, selection, metadata, verdicts.

        ``rank`` is 1 for the highest score of the pool (before filtering);
        ``pred_class`` is the dominant class the group's first SS model
        predicts, ``dominant_class`` (when the pool has it) the true one. Sort
        by any column (NaN last); filter with :func:`filter_table` expressions.
        """
        result = self.result(result)
        variables = [v for v in result.data_vars if result[v].dims == ("sample",)]
        frame = result[variables].to_dataframe()
        frame.index = frame.index.astype(str)
        frame.index.name = "sample"
        frame = frame.rename(columns={"dominant_class": "pred_class"})
        score = frame["score"].to_numpy(dtype=np.float64)
        order = np.argsort(np.where(np.isfinite(score), -score, np.inf), kind="stable")
        rank = np.empty(len(frame), np.int64)
        rank[order] = np.arange(1, len(frame) + 1)
        frame.insert(0, "rank", rank)
        group = group_of(result)
        if group.ss and "pred_class" in frame:
            classes = self._classes(group.ss[0])
            frame["pred_class_name"] = [
                classes[c] if 0 <= c < len(classes) else str(c) for c in frame["pred_class"].astype(int)
            ]
        meta = self.metadata()
        frame = frame.join(meta[[c for c in meta.columns if c not in frame.columns]], how="left")
        frame["verdicts"] = self._verdict_column(frame.index, group)
        frame = frame.reset_index()
        frame = filter_table(frame, filters)
        if sort_by not in frame:
            raise MdcError(f"Cannot sort by {sort_by!r}: no such column. Columns: {', '.join(frame.columns)}.")
        return frame.sort_values(
            [sort_by, "rank"], ascending=[ascending, True], na_position="last", kind="stable"
        ).reset_index(drop=True)

    def _verdict_column(self, samples: pd.Index, group: CompetitionGroup) -> list[str]:
        pairs = {(a, b) if a <= b else (b, a) for a, b, _ in group_pairs(group)}
        verdicts: dict[str, list[str]] = {}
        for item in self.labels:
            if (item.model_a, item.model_b) in pairs:
                winner = item.winner or item.verdict
                verdicts.setdefault(item.sample, []).append(f"{item.model_a}|{item.model_b}:{winner}")
        return ["; ".join(verdicts.get(s, [])) for s in samples]

    def _classes(self, model: str) -> list[str]:
        from mdc_widgets.predictions import model_classes

        return list(model_classes(self.predictions).get(model, []))

    # -- one sample ------------------------------------------------------------------------
    def index_of(self, sample_id: str) -> int:
        """Position of a sample in the pool (``MdcError`` naming it when unknown)."""
        try:
            return self._index[str(sample_id)]
        except KeyError:
            raise MdcError(f"Sample {sample_id!r} is not in pool {getattr(self.pool, 'name', '?')!r}.") from None

    def images(self, sample_ids: Sequence[str]) -> np.ndarray:
        """The RGB images ``(n, H, W, 3)`` uint8 of some samples (one contiguous read where possible)."""
        idx = np.array([self.index_of(s) for s in sample_ids], np.int64)
        h, w = (int(s) for s in self.pool.image_size)
        if not len(idx):
            return np.zeros((0, h, w, 3), np.uint8)
        if np.all(np.diff(idx) == 1):
            return np.asarray(self.pool.read_images(int(idx[0]), int(idx[-1]) + 1)[0])
        return np.stack([np.asarray(self.pool.read_images(int(i), int(i) + 1)[0][0]) for i in idx])

    def ground_truth(self) -> xr.Dataset | None:
        """The pool's ground truth (``semantic``, ``saliency``), or None."""
        if self._ground_truth is ...:
            self._ground_truth = self.pool.ground_truth() if hasattr(self.pool, "ground_truth") else None
        return self._ground_truth

    def set_ground_truth(self, masks: xr.Dataset | None) -> xr.Dataset | None:
        """Evaluate and rank on these masks from now on, e.g. corrected masks back from an annotation tool.

        ``masks`` holds ``semantic`` and/or ``saliency (sample, y, x)`` at the
        pool's working size for some samples (what
        :func:`mdc_widgets.export.import_coco` and ``import_label_studio``
        return); the other samples keep the pool's own ground truth or stay
        unlabeled. ``None`` goes back to the pool's ground truth.
        """
        from mdc_widgets.export.masks import pool_ground_truth

        base = self.pool.ground_truth() if hasattr(self.pool, "ground_truth") else None
        if masks is not None:
            size = tuple(int(s) for s in self.pool.image_size)
            if (masks.sizes.get("y"), masks.sizes.get("x")) != size:
                raise MdcError(
                    f"The masks are {masks.sizes.get('y')}x{masks.sizes.get('x')} pixels, the pool's "
                    f"working size is {size[0]}x{size[1]}; import masks of images exported from this pool."
                )
            base = pool_ground_truth(masks, [str(s) for s in self.pool.sample_ids], base)
        with self._lock:
            self._ground_truth = base
            self._evaluation.clear()
        return base

    def export(
        self,
        format: str,
        target: str | Path,
        result: str | xr.Dataset | None = None,
        selected_only: bool = True,
        **options: Any,
    ) -> Any:
        """Hand a mining result on: ``"folder"``, ``"coco"``, ``"label-studio"`` (into the folder ``target``)
        or ``"fiftyone"`` (the dataset named ``target``); see :mod:`mdc_widgets.export`.

        Returns what the exporter returns (``index.html``, ``{model: json}``,
        ``tasks.json`` or the FiftyOne dataset).
        """
        from mdc_widgets.export import export_as

        return export_as(format, self, target, result=result, selected_only=selected_only, **options)

    def _prediction_view(self, image: np.ndarray, prediction: np.ndarray, task: str, classes: list[str]) -> dict:
        from mdc_widgets.explain import legend, overlay_labels
        from mdc_widgets.viz import overlay_saliency, saliency_legend

        if task == "ss":
            return {
                "task": task,
                "map": prediction,
                "overlay": overlay_labels(image, prediction),
                "legend": legend(classes, present=np.unique(prediction)),
            }
        return {
            "task": task,
            "map": prediction,
            "overlay": overlay_saliency(image, prediction),
            "legend": saliency_legend(),
        }

    def sample_detail(
        self,
        sample_id: str,
        models: Sequence[str] | None = None,
        result: str | xr.Dataset | None = None,
    ) -> dict[str, Any]:
        """Everything the detail view shows about one sample.

        Returns a dict with ``sample``, ``index``, ``image`` (uint8 RGB),
        ``valid``, ``error``; ``predictions`` ``{model: {task, map, overlay,
        legend}}`` (legend: ``(class name, '#rrggbb')`` of the classes present);
        ``disagreement`` ``{"a|b": {model_a, model_b, kind, map in [0, 1],
        overlay, fraction}}`` for the group's pairs (SS: labels differ; SOD:
        ``|s - t|``; cross: SS foreground xor binarised saliency);
        ``ground_truth`` (overlays and legends, or None) with ``metrics``
        per model; ``scores`` (rank, score, term_*, d_*, selected) of the
        result; ``metadata``; ``labels`` (current verdicts of the pairs).
        """
        from mdc_widgets.explain import legend, overlay_labels
        from mdc_widgets.viz import disagreement_map, overlay_saliency

        index = self.index_of(sample_id)
        image = self.images([sample_id])[0]
        predictions = self.predictions
        try:
            res = self.result(result)
        except MdcError:
            res = None
        group = group_of(res) if res is not None else None
        if models is None:
            models = list(group.models) if group is not None else [str(m) for m in predictions["model"].values]
        self._require(models)
        maps = np.asarray(predictions["prediction"].isel(sample=index).sel(model=list(models)).values)
        tasks = {m: str(predictions["task"].sel(model=m).values) for m in models}
        views = {m: self._prediction_view(image, maps[i], tasks[m], self._classes(m)) for i, m in enumerate(models)}

        if group is not None and set(group.models) <= set(models):
            pairs = group_pairs(group)
        else:
            from mdc_widgets.discrepancy import pair_kind

            pairs = [(a, b, pair_kind(tasks[a], tasks[b])) for a, b in combinations(models, 2)]
            # a cross pair is always (SS, SOD)
            pairs = [(b, a, k) if k == "cross" and tasks[a] == "sod" else (a, b, k) for a, b, k in pairs]
        disagreement = {}
        for a, b, kind in pairs:
            dmap = disagreement_map(views[a]["map"], views[b]["map"], kind)
            disagreement[f"{a}|{b}"] = {
                "model_a": a,
                "model_b": b,
                "kind": kind,
                "map": dmap,
                "overlay": overlay_saliency(image, dmap),
                "fraction": float(dmap.mean()),
            }

        gt_view = None
        gt = self.ground_truth()
        if gt is not None:
            gt_view = {}
            classes = list(getattr(self.pool, "classes", None) or gt.attrs.get("classes") or [])
            if "semantic" in gt:
                sem = np.asarray(gt["semantic"].isel(sample=index).values)
                gt_view["semantic"] = {
                    "map": sem,
                    "overlay": overlay_labels(image, sem),
                    "legend": legend(classes or [str(i) for i in range(int(sem.max()) + 1)], present=np.unique(sem)),
                }
            if "saliency" in gt:
                sal = np.asarray(gt["saliency"].isel(sample=index).values)
                gt_view["saliency"] = self._prediction_view(image, sal, "sod", [])
            gt_view["metrics"] = self._sample_metrics(index, list(models), gt)

        scores: dict[str, Any] = {}
        if res is not None:
            row = res.isel(sample=index)
            for name in res.data_vars:
                if res[name].dims == ("sample",):
                    scores["pred_class" if name == "dominant_class" else name] = row[name].values.item()
            finite = res["score"].values[np.isfinite(res["score"].values)]
            score = scores.get("score")
            scores["rank"] = int((finite > score).sum()) + 1 if score is not None and np.isfinite(score) else None
        meta = self.metadata()
        metadata = (
            {k: (v.item() if hasattr(v, "item") else v) for k, v in meta.loc[str(sample_id)].items()}
            if str(sample_id) in meta.index
            else {}
        )
        valid = bool(predictions["valid"].values[index]) if "valid" in predictions else True
        labels = {}
        for a, b, _ in pairs:
            found = self.labels.get(str(sample_id), a, b)
            if found is not None:
                labels[f"{a}|{b}"] = found.verdict
        detail = {
            "sample": str(sample_id),
            "index": index,
            "image": image,
            "valid": valid,
            "error": getattr(self.pool, "errors", {}).get(str(sample_id)),
            "models": list(models),
            "predictions": views,
            "disagreement": disagreement,
            "ground_truth": gt_view,
            "scores": scores,
            "metadata": metadata,
            "labels": labels,
        }
        return _at_native_aspect(detail, self.pool, index)

    def _sample_metrics(self, index: int, models: list[str], gt: xr.Dataset) -> dict[str, dict[str, float]]:
        from mdc_widgets.metrics import evaluate

        if "saliency" not in gt:
            return {}
        ev = evaluate(self.predictions.isel(sample=[index]).sel(model=models), gt.isel(sample=[index]))
        out = {}
        for m in models:
            row = ev.sel(model=m).isel(sample=0)
            names = (
                ("miou", "fbeta_max", "mae") if str(row["task"].values) == "ss" else ("fbeta_max", "mae", "s_measure")
            )
            out[m] = {k: float(row[k].values) for k in names if np.isfinite(row[k].values)}
        return out

    # -- explanations ----------------------------------------------------------------------
    def explain(
        self,
        sample_id: str,
        model: str,
        target_class: int | str | None = None,
        layer: str | None = None,
    ) -> dict[str, Any]:
        """Grad-CAM (SS) or saliency + CAM (SOD) of one model on one sample.

        ``target_class`` is a class index or name (default: the class the model
        predicts most); ``layer`` a name from ``layers`` (default: the model's
        CAM layer). Returns ``cam`` ``(H, W)`` in [0, 1], ``cam_overlay``,
        ``prediction_overlay``, ``layers``, ``layer``, ``target_class``,
        ``target_name`` and, for SOD, ``saliency``/``saliency_overlay``.
        """
        from mdc_widgets.explain import grad_cam, list_cam_layers, overlay_heatmap, saliency_explanation
        from mdc_widgets.viz import overlay_saliency

        comp = self.competitor(model)
        image = self.images([sample_id])[0]
        batch = image[None]
        if isinstance(target_class, str):
            if target_class not in comp.classes:
                raise MdcError(f"Model {model!r} has no class {target_class!r}; its classes are {list(comp.classes)}.")
            target_class = list(comp.classes).index(target_class)
        out: dict[str, Any] = {
            "sample": str(sample_id),
            "model": model,
            "task": comp.task,
            "image": image,
            "layers": list_cam_layers(comp),
            "layer": layer or comp.cam_layer,
        }
        if hasattr(comp, "predict_samples"):
            # released maps have no network to open: the map itself is all there is to show
            self._require([model])
            prediction = np.asarray(
                self.predictions["prediction"].isel(sample=self.index_of(sample_id)).sel(model=model).values
            )
            view = self._prediction_view(image, prediction, comp.task, list(comp.classes))
            out.update(
                cam=None,
                cam_overlay=None,
                prediction_overlay=view["overlay"],
                legend=view["legend"],
                target_class=None,
                target_name=None,
                note=f"{model} is a folder of released maps: there is no network, so no class activation "
                "map; the map is shown as released.",
            )
            if comp.task == "sod":
                out.update(saliency=prediction / 255.0, saliency_overlay=view["overlay"])
            return out
        if comp.task == "sod":
            explained = saliency_explanation(comp, batch, layer=layer)
            saliency = np.asarray(explained["saliency"][0])
            cam = np.asarray(explained["cam"][0])
            out.update(
                saliency=saliency,
                saliency_overlay=overlay_saliency(image, saliency),
                target_class=1,
                target_name="salient",
            )
            prediction = (np.clip(saliency, 0, 1) * 255).round().astype(np.uint8)
        else:
            cam = np.asarray(grad_cam(comp, batch, target_class=target_class, layer=layer)[0])
            prediction = None
            if model in self.predicted_models():
                prediction = np.asarray(
                    self.predictions["prediction"].isel(sample=self.index_of(sample_id)).sel(model=model).values
                )
            if prediction is None:
                import torch

                with torch.no_grad():
                    x = torch.as_tensor(batch).permute(0, 3, 1, 2).float().div(255).to(getattr(comp, "device", "cpu"))
                    prediction = comp.predict(x).argmax(1)[0].cpu().numpy().astype(np.uint8)
            if target_class is None:
                counts = np.bincount(prediction.ravel(), minlength=len(comp.classes))
                counts[0] = 0
                target_class = int(counts.argmax()) if counts.max() > 0 else 0
            out.update(target_class=int(target_class), target_name=comp.classes[int(target_class)])
        view = self._prediction_view(image, prediction, comp.task, list(comp.classes))
        out.update(
            cam=cam,
            cam_overlay=overlay_heatmap(image, cam, alpha=0.55),
            prediction_overlay=view["overlay"],
            legend=view["legend"],
        )
        return out

    # -- labels and ranking ----------------------------------------------------------------
    def label(
        self,
        sample_id: str,
        model_a: str,
        model_b: str,
        verdict: str,
        *,
        mask: np.ndarray | None = None,
        mask_model: str | None = None,
        annotator: str = "",
    ) -> Label:
        """Record a verdict on one sample for a pair (saved to disk at once)."""
        self.index_of(sample_id)
        return self.labels.label(
            str(sample_id), model_a, model_b, verdict, mask=mask, mask_model=mask_model, annotator=annotator
        )

    def accept_mask(self, sample_id: str, model_a: str, model_b: str, model: str) -> Label:
        """Keep ``model``'s prediction as the sample's accepted mask for the pair.

        SS masks are label maps, SOD masks the binarised saliency (0/255). The
        pair's verdict is kept; without one, the accepted model counts as the
        better one.
        """
        from mdc_widgets.discrepancy import binarize_saliency

        if model not in (model_a, model_b):
            raise MdcError(f"The accepted mask must come from {model_a!r} or {model_b!r}, not {model!r}.")
        self._require([model])
        prediction = np.asarray(
            self.predictions["prediction"].isel(sample=self.index_of(sample_id)).sel(model=model).values
        )
        if self.model_task(model) == "sod":
            prediction = np.asarray(binarize_saliency(prediction[None]))[0].astype(np.uint8) * 255
        current = self.labels.get(str(sample_id), model_a, model_b)
        verdict = current.verdict if current is not None else ("a" if model == model_a else "b")
        return self.label(sample_id, model_a, model_b, verdict, mask=prediction, mask_model=model)

    def evaluation(self, samples: Sequence[str] | None = None) -> xr.Dataset:
        """Per-image ground-truth metrics ``(sample, model)`` of every predicted model (cached)."""
        gt = self.ground_truth()
        if gt is None:
            raise MdcError(f"Pool {getattr(self.pool, 'name', '?')!r} has no ground truth to evaluate against.")
        key = tuple(sorted(str(s) for s in samples)) if samples is not None else ("<all>",)
        with self._lock:
            if key not in self._evaluation:
                from mdc_widgets.metrics import evaluate

                ids = None if samples is None else list(key)
                self._evaluation[key] = evaluate(self.predictions, gt, samples=ids)
            return self._evaluation[key]

    def _ground_truth_comparisons(self, on: str) -> pd.DataFrame:
        from mdc_widgets.ranking import comparisons_from_scores

        predicted = set(self.predicted_models())
        pairs_samples: dict[tuple[str, str], list[str]] = {}
        if on == "labeled":
            for item in self.labels:
                if {item.model_a, item.model_b} <= predicted:
                    pairs_samples.setdefault((item.model_a, item.model_b), []).append(item.sample)
        elif on == "selected":
            for res in self.results.values():
                chosen = [str(s) for s in res["sample"].values[res["selected"].values]]
                for a, b, _ in group_pairs(group_of(res)):
                    known = pairs_samples.setdefault((a, b), [])
                    known.extend(sorted(set(chosen) - set(known), key=chosen.index))
        elif on == "pool":
            ids = [str(s) for s in self.pool.sample_ids]
            pairs_samples = {(a, b): ids for a, b in combinations(sorted(predicted), 2)}
        else:
            raise MdcError(f"ground_truth must be 'labeled', 'selected', 'pool' or None; got {on!r}.")
        if not pairs_samples:
            return pd.DataFrame(columns=["sample", "model_a", "model_b", "winner"])
        samples = sorted({s for ids in pairs_samples.values() for s in ids})
        ev = self.evaluation(None if on == "pool" else samples)
        tasks = {m: self.model_task(m) for pair in pairs_samples for m in pair}
        frames = []
        for (a, b), ids in pairs_samples.items():
            metric = "miou" if tasks[a] == tasks[b] == "ss" else "fbeta_max"
            frames.append(comparisons_from_scores(ev[metric], pairs_samples={(a, b): ids}).assign(metric=metric))
        return pd.concat(frames, ignore_index=True)

    def ranking(
        self,
        n_boot: int = 200,
        seed: int = 0,
        ground_truth: str | None = "labeled",
        ci: float = 0.95,
    ) -> pd.DataFrame:
        """Global rankings: from the verdicts, and from ground-truth metrics when the pool has them.

        Each source is ranked by a Bradley-Terry fit with bootstrap confidence
        intervals, beside plain win rates; models that were never compared,
        even indirectly, are ranked in separate ``component``s. The ground-truth
        ranking compares the same (sample, pair)s as the labels
        (``"labeled"``), the selected sets of the results (``"selected"``), or
        every pair on the whole pool (``"pool"``); the metric is mIoU for two
        SS models and max F-beta otherwise. ``None`` skips it.

        Returns
        -------
        pandas.DataFrame
            ``source, component, model, task, strength, ci_low, ci_high,
            win_rate, n_comparisons, rank``.
        """
        from mdc_widgets.ranking import bootstrap_ranking

        sources: list[tuple[str, pd.DataFrame]] = []
        labels = self.labels.to_frame()
        if len(labels):
            sources.append(("labels", labels[["sample", "model_a", "model_b", "verdict"]]))
        if ground_truth is not None and self.ground_truth() is not None and self.predicted_models():
            on = ground_truth if (ground_truth != "labeled" or len(labels)) else "selected"
            comparisons = self._ground_truth_comparisons(on)
            if len(comparisons):
                sources.append(("ground truth", comparisons))
        rows = []
        for source, comparisons in sources:
            for component in _components(zip(comparisons["model_a"], comparisons["model_b"])):
                part = comparisons[comparisons["model_a"].isin(component)]
                ranked = bootstrap_ranking(part, models=component, n_boot=n_boot, seed=seed, ci=ci)
                frame = ranked[["strength", "ci_low", "ci_high", "win_rate", "n_comparisons", "rank"]].to_dataframe()
                frame = frame.reset_index().assign(source=source, component="+".join(component))
                rows.append(frame)
        columns = [
            "source",
            "component",
            "model",
            "task",
            "strength",
            "ci_low",
            "ci_high",
            "win_rate",
            "n_comparisons",
            "rank",
        ]
        if not rows:
            return pd.DataFrame(columns=columns)
        out = pd.concat(rows, ignore_index=True)
        out["task"] = [self._task_or_none(m) for m in out["model"]]
        return out[columns].sort_values(["source", "component", "rank"], kind="stable").reset_index(drop=True)

    def _task_or_none(self, name: str) -> str | None:
        try:
            return self.model_task(name)
        except (UnknownModelError, MdcError):
            return None

    # -- figures ---------------------------------------------------------------------------
    def scatter_pairs(
        self, result: str | xr.Dataset | None = None
    ) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
        """The intra-task pair and the cross-task pairs the intra-vs-cross scatter compares.

        The result's SS pair (else its SOD pair) against the group's cross
        pairs; a single-task group is compared with every predicted model of
        the other task.
        """
        group = group_of(self.result(result))
        # the first intra-task pair stands for the task when a group has more than two models of it
        intra_pairs = group.intra_pairs("ss") or group.intra_pairs("sod")
        intra = intra_pairs[0] if intra_pairs else None
        cross = list(group.cross_pairs)
        if not cross and intra is not None:
            if intra[0] in group.ss:
                cross = [(a, p) for a in group.ss for p in self.predicted_models("sod")]
            else:
                cross = [(a, p) for a in self.predicted_models("ss") for p in group.sod]
        if intra is None and cross:
            intra = cross[0]
        return (tuple(intra) if intra else None), cross

    def figures(
        self,
        result: str | xr.Dataset | None = None,
        subset: str = "pool",
        n_boot: int = 100,
    ) -> dict[str, Any]:
        """The plotly figures of the investigation: ``heatmap``, ``scatter``, ``histograms``, ``ranking``.

        ``subset`` is ``"pool"`` or ``"selected"`` (the heatmap's samples).
        Figures that need a mining result are left out before there is one.
        """
        from mdc_widgets.viz import discrepancy_heatmap, intra_cross_scatter, ranking_figure, score_histograms

        figures: dict[str, Any] = {}
        discrepancy = self.discrepancy()
        try:
            res = self.result(result)
        except MdcError:
            res = None
        chosen = [str(s) for s in res["sample"].values[res["selected"].values]] if res is not None else None
        figures["heatmap"] = discrepancy_heatmap(
            discrepancy,
            samples=chosen if subset == "selected" and chosen else None,
            title=None
            if subset != "selected" or not chosen
            else f"Mean pairwise discrepancy on the {len(chosen)} selected images",
        )
        if res is not None:
            intra, cross = self.scatter_pairs(res)
            if intra is not None:
                figures["scatter"] = intra_cross_scatter(
                    discrepancy, intra, cross, highlight=chosen or (), color=res["score"].values
                )
            figures["histograms"] = score_histograms(res)
        figures["ranking"] = ranking_figure(self.ranking(n_boot=n_boot))
        return figures

    # -- issue 15: the app's state across kernel restarts, and per-model checkpoints -----------
    # small delegating methods only; the logic lives in mdc_widgets.state
    @property
    def state_folder(self) -> Path:
        """Where the app's state is kept: beside the verdicts (``<store>`` unless ``labels=`` moved them)."""
        return Path(self.labels.path).parent

    def app_state(self) -> Any:
        """The app's last state (:class:`mdc_widgets.state.AppState`) from :attr:`state_folder`, or None."""
        from mdc_widgets.state import load_app_state

        return load_app_state(self.state_folder)

    def save_app_state(self, state: Any) -> Path:
        """Save the app's state in :attr:`state_folder`, atomically (:func:`mdc_widgets.state.save_app_state`)."""
        from mdc_widgets.state import save_app_state

        return save_app_state(self.state_folder, state)

    def restore(self) -> tuple[Any, bool]:
        """Reopen the result the app showed last (it becomes ``current_key``); returns ``(state, result_found)``.

        Nothing changes when this session already has a current result or no
        state was saved; a result that is no longer in the store is reported,
        not raised.
        """
        state = self.app_state()
        if state is None or not state.result_key:
            return state, False
        if self.current_key is not None:
            return state, self.current_key == state.result_key
        try:
            self.result(state.result_key)
        except MdcError:
            return state, False
        self.current_key = state.result_key
        return state, True

    def missing_weights(self, name: str) -> str | None:
        """Why ``name`` cannot be built here (its checkpoint is absent), or None (see :func:`mdc_widgets.state.missing_weights`)."""
        return self.models_without_weights([name]).get(name)

    def models_without_weights(self, names: Sequence[str]) -> dict[str, str]:
        """``{name: why}`` of the models among ``names`` that cannot be built here for want of a checkpoint."""
        from mdc_widgets.state import missing_weights

        found = {n: missing_weights(n) for n in names if self._competitors.get(n) is None}
        found = {n: why for n, why in found.items() if why}
        if found:
            # stored predictions need no weights: those models never run again
            predicted = set(self.predicted_models())
            found = {n: why for n, why in found.items() if n not in predicted}
        return found

    def use_checkpoint(self, name: str, checkpoint: str | Path | None) -> Any:
        """Build the registered model ``name`` from a checkpoint file, or with random weights (``None``, a dry run).

        The competitor replaces any built before; ``MdcError`` names a missing
        or unfitting file.
        """
        import inspect

        from mdc_widgets.models import get_model

        if checkpoint is not None and not Path(checkpoint).expanduser().is_file():
            raise MdcError(f"No checkpoint file at {checkpoint}; give the path of a saved state_dict (.pt, .pth).")
        source = None if checkpoint is None else str(Path(checkpoint).expanduser())
        keyword = "checkpoint" if "checkpoint" in inspect.signature(get_model).parameters else "weights"
        competitor = get_model(name, device=resolve_device(self.device), **{keyword: source})
        self._competitors[name] = competitor
        return competitor

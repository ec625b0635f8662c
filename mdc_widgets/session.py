"""The state of one MAD investigation, driven by the widgets and usable from plain scripts.

A :class:`Session` ties a pool to a prediction store and remembers what was
done on it: which models predicted, the (cached) pairwise discrepancies, the
mining results, the human verdicts. Every widget action is one method call
here, so anything a notebook user clicks can be replayed in a script::

    session = Session("miniworld", "runs/demo")
    session.predict(["mw_unet_ss", "mw_fcn_ss"])
    result = session.mine(CompetitionGroup(ss=("mw_unet_ss", "mw_fcn_ss")), Weights(1, 0, 0), k=20)
    session.ranked_table(result, filters="occlusion > 0.3").head()

The session remembers and delegates; the logic behind each action lives in
the module named for it: :mod:`mdc_widgets.tables` (the ranked table and its
filter language), :mod:`mdc_widgets.views` (the detail, explanation and
figures panels), :mod:`mdc_widgets.ranking.sources` (rankings from verdicts
and ground truth) and :mod:`mdc_widgets.mining` (scores, selection, result
names); the pool, its predictions and their caches are
:class:`mdc_widgets.workspace.PoolWorkspace`, which the session extends.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets import tables, views
from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError
from mdc_widgets.labeling import Label, LabelStore
from mdc_widgets.mining import (
    CompetitionGroup,
    Constraints,
    Weights,
    group_of,
    group_pairs,
    load_mining,
    mine,
    result_key,
    selected_samples,
)
from mdc_widgets.ranking import comparison_samples, ground_truth_comparisons, rank_sources
from mdc_widgets.tables import Filter, filter_table
from mdc_widgets.workspace import PoolWorkspace

# group_of, group_pairs and filter_table have their homes in mining and tables; importable from here as before
__all__ = ["Session", "filter_table", "group_of", "group_pairs"]


class Session(PoolWorkspace):
    """One pool, one prediction store, and everything done on them.

    The data side (the pool, the store, the competitors, predictions,
    discrepancies, ground truth and evaluation) is :class:`~mdc_widgets.workspace.PoolWorkspace`;
    a session adds the investigation: mining results, verdicts, rankings and
    the widgets' views.

    Parameters
    ----------
    pool : Pool or str or path
        A pool, or anything :func:`mdc_widgets.data.open_pool` accepts.
    store : str or path, optional
        Folder of the predictions (default ``<cache>/sessions/<pool fingerprint>``).
    models : sequence, optional
        Competitors (objects) or registered names offered besides the registry.
    labels : LabelStore or path, optional
        The verdicts (default ``<store>/labels.jsonl``).
    device : str, optional
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    use_registry : bool, optional
        Offer every registered model (``list_models``) as well.
    maps : dict, optional
        Released maps that compete like models, ``{name: folder}`` (saliency)
        or ``{name: (folder, "ss", classes)}``.
    **pool_options : object
        Passed to ``open_pool`` when ``pool`` is not a Pool, as for
        :class:`~mdc_widgets.workspace.PoolWorkspace`.
    """

    def __init__(
        self,
        pool: Pool | str | Path,
        store: str | Path | None = None,
        *,
        models: Sequence[Any] = (),
        labels: LabelStore | str | Path | None = None,
        device: str = "auto",
        use_registry: bool = True,
        maps: dict[str, Any] | None = None,
        **pool_options: Any,
    ):
        super().__init__(
            pool, store, models=models, device=device, use_registry=use_registry, maps=maps, **pool_options
        )
        if not isinstance(labels, LabelStore):
            labels = LabelStore(labels or self.store / "labels.jsonl", sample_ids=self.pool.sample_ids)
        self.labels = labels
        self.results: dict[str, xr.Dataset] = {}
        self.current_key: str | None = None

    def __repr__(self) -> str:
        return (
            f"Session(pool={self._pool_name!r}, n={len(self.pool)}, store={str(self.store)!r}, "
            f"predicted={self.predicted_models()}, results={list(self.results)}, labels={len(self.labels)})"
        )

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

        Parameters
        ----------
        group : CompetitionGroup
            The competitors; each must have predictions of this pool.
        weights : Weights, optional
            The weights of the SS, SOD and cross terms.
        k : int, optional
            How many images to select.
        constraints : Constraints, optional
            Diversity constraints (near-duplicates are judged on the pool's
            thumbnails, computed once per session).
        key : str or None, optional
            Name of the result; by default :func:`~mdc_widgets.mining.result_key`,
            so re-mining a group replaces its own result.
        disjoint : bool, optional
            Select no sample already selected by another result of this session.
        sod_measure : {"iou", "mae"}, optional
            The measure of SOD pairs.
        save : bool, optional
            Also write the result into the store.
        protocol : {"mdc", "ijcv2021"}, optional
            As for :func:`mdc_widgets.mining.mine`.
        fusion : {"rank", "raw", "minmax"}, optional
            As for :func:`mdc_widgets.mining.mine`.

        Returns
        -------
        xarray.Dataset
            The mining result, now the session's current one.
        """
        self._require(group.models)
        key = key or result_key(group, weights, k, protocol, fusion)
        if disjoint:
            taken = {s for name, r in self.results.items() if name != key for s in selected_samples(r)}
            constraints = replace(constraints, exclude=constraints.exclude | taken)
        # the ijcv2021 rule has no near-duplicate suppression
        features = self.features() if constraints.dedup_threshold is not None and protocol == "mdc" else None
        result = mine(
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
        """A mining result: ``result`` itself (a dataset), the one of that key (remembered or stored), or the latest.

        Parameters
        ----------
        result : str or xarray.Dataset or None, optional
            A result (returned as it is), a key, or None for the latest.

        Returns
        -------
        xarray.Dataset
            The mining result.

        Raises
        ------
        MdcError
            No result was mined yet (None), or the key is not stored.
        """
        if isinstance(result, xr.Dataset):
            return result
        key = result or self.current_key
        if key is None:
            raise MdcError("No mining result yet; call session.mine(group, weights, k) first.")
        if key not in self.results:
            self.results[key] = load_mining(self.store, key)
        return self.results[key]

    def _result_or_none(self, result: str | xr.Dataset | None) -> xr.Dataset | None:
        try:
            return self.result(result)
        except MdcError:
            return None

    # -- tables ----------------------------------------------------------------------------

    def ranked_table(
        self,
        result: str | xr.Dataset | None = None,
        sort_by: str = "score",
        filters: Filter | Sequence[Filter] | None = None,
        ascending: bool = False,
    ) -> pd.DataFrame:
        """One row per sample of the pool: rank, scores, selection, metadata, verdicts (:func:`mdc_widgets.tables.ranked_table`).

        Sort by any column (NaN last); filter with :func:`~mdc_widgets.tables.filter_table` expressions.

        Parameters
        ----------
        result : str or xarray.Dataset or None, optional
            A mining result or its key; None: the latest.
        sort_by : str, optional
            The column to sort by.
        filters : Filter or sequence of Filter or None, optional
            Rows to keep (:func:`~mdc_widgets.tables.filter_table`).
        ascending : bool, optional
            Sort order.

        Returns
        -------
        pandas.DataFrame
            :func:`mdc_widgets.tables.ranked_table`'s table.
        """
        result = self.result(result)
        classes = self.first_ss_classes(group_of(result))
        return tables.ranked_table(result, self.metadata(), self.labels, classes, sort_by, filters, ascending)

    # -- one sample ------------------------------------------------------------------------

    def set_ground_truth(self, masks: xr.Dataset | None) -> xr.Dataset | None:
        """Evaluate and rank on these masks from now on, e.g. corrected masks back from an annotation tool.

        ``masks`` holds ``semantic`` and/or ``saliency (sample, y, x)`` at the
        pool's working size, or at the images' own size, for some samples (what
        :func:`mdc_widgets.export.import_coco` and ``import_label_studio``
        return); the other samples keep the pool's own ground truth or stay
        unlabeled. ``None`` goes back to the pool's ground truth.

        Parameters
        ----------
        masks : xarray.Dataset or None
            The corrected masks, or None for the pool's ground truth.

        Returns
        -------
        xarray.Dataset or None
            The ground truth now in use.
        """
        from mdc_widgets.export.masks import pool_ground_truth, to_working_canvas  # exporters load on use

        if masks is None:
            return self.use_ground_truth(None)
        masks = to_working_canvas(masks, self.pool)  # masks at the photos' own size (a native-size export)
        self.check_working_size(masks)
        base = self.pool.ground_truth()
        return self.use_ground_truth(pool_ground_truth(masks, [str(s) for s in self.pool.sample_ids], base))

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

        Parameters
        ----------
        format : {"folder", "coco", "label-studio", "fiftyone"}
            The exporter.
        target : str or pathlib.Path
            The output folder, or the FiftyOne dataset name.
        result : str or xarray.Dataset or None, optional
            A mining result or its key; None: the latest.
        selected_only : bool, optional
            Export the selected samples only (False: the whole pool, ranked).
        **options : object
            The exporter's own options (:func:`mdc_widgets.export.export_as`).

        Returns
        -------
        object
            What the exporter returns (a path, or a FiftyOne dataset).
        """
        from mdc_widgets.export import export_as  # the exporters load only when a result is handed on

        return export_as(format, self, target, result=result, selected_only=selected_only, **options)

    def sample_detail(
        self, sample_id: str, models: Sequence[str] | None = None, result: str | xr.Dataset | None = None
    ) -> dict[str, Any]:
        """Everything the detail view shows about one sample (:func:`mdc_widgets.views.sample_detail`).

        Parameters
        ----------
        sample_id : str
            A sample of the pool.
        models : sequence of str or None, optional
            The predicted models to show; None: the result's group (or every predicted model).
        result : str or xarray.Dataset or None, optional
            A mining result or its key; None: the latest.

        Returns
        -------
        dict of {str: object}
            :func:`mdc_widgets.views.sample_detail`'s dict.
        """
        index = self.index_of(sample_id)
        result = self._result_or_none(result)
        models = list(models) if models is not None else views.detail_models(self.predictions, result)
        self._require(models)
        return views.sample_detail(
            self.predictions,
            index,
            self.images([sample_id])[0],
            models=models,
            result=result,
            ground_truth=self.ground_truth(),
            metadata=self.metadata(),
            labels=self.labels,
            pool=self.pool,
            classes=self._model_classes(),
        )

    def explain(
        self, sample_id: str, model: str, target_class: int | str | None = None, layer: str | None = None
    ) -> dict[str, Any]:
        """Grad-CAM (SS) or saliency + CAM (SOD) of one model on one sample (:func:`mdc_widgets.views.explanation`).

        ``target_class`` is a class index or name (default: the class the
        model predicts most); ``layer`` a name from ``layers`` (default: the
        model's CAM layer).

        Parameters
        ----------
        sample_id : str
            A sample of the pool.
        model : str
            The model to explain.
        target_class : int or str or None, optional
            Class index or name to explain.
        layer : str or None, optional
            The CAM layer.

        Returns
        -------
        dict of {str: object}
            :func:`mdc_widgets.views.explanation`'s dict.
        """
        competitor = self.competitor(model)
        released = hasattr(competitor, "predict_samples")
        stored = self._stored_map(sample_id, model) if released or model in self.predicted_models() else None
        image = self.images([sample_id])[0]
        return views.explanation(
            competitor, image, sample_id, prediction=stored, target_class=target_class, layer=layer
        )

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
        """Record a verdict on one sample for a pair (saved to disk at once).

        Parameters
        ----------
        sample_id : str
            A sample of the pool.
        model_a : str
            The pair's first model.
        model_b : str
            The pair's second model.
        verdict : str
            One of :data:`mdc_widgets.ranking.VERDICTS` (``"a"``, ``"b"``, ``"both_wrong"``, ``"both_fine"``).
        mask : numpy.ndarray or None, optional
            ``(H, W)`` an accepted or corrected mask to keep with the verdict.
        mask_model : str or None, optional
            The model the mask came from.
        annotator : str, optional
            Who gave the verdict.

        Returns
        -------
        Label
            The stored verdict.
        """
        self.index_of(sample_id)
        options = {"mask": mask, "mask_model": mask_model, "annotator": annotator}
        return self.labels.label(str(sample_id), model_a, model_b, verdict, **options)

    def accept_mask(self, sample_id: str, model_a: str, model_b: str, model: str) -> Label:
        """Keep ``model``'s prediction as the sample's accepted mask for the pair.

        SS masks are label maps, SOD masks the binarised saliency (0/255). The
        pair's verdict is kept; without one, the accepted model counts as the
        better one.

        Parameters
        ----------
        sample_id : str
            A sample of the pool.
        model_a : str
            The pair's first model.
        model_b : str
            The pair's second model.
        model : str
            ``model_a`` or ``model_b``: whose prediction is accepted.

        Returns
        -------
        Label
            The stored verdict with the mask.

        Raises
        ------
        MdcError
            ``model`` is not one of the pair.
        """
        if model not in (model_a, model_b):
            raise MdcError(f"The accepted mask must come from {model_a!r} or {model_b!r}, not {model!r}.")
        mask = views.accepted_mask(self._stored_map(sample_id, model), self.model_task(model))
        current = self.labels.get(str(sample_id), model_a, model_b)
        verdict = current.verdict if current is not None else ("a" if model == model_a else "b")
        return self.label(sample_id, model_a, model_b, verdict, mask=mask, mask_model=model)

    def ranking(
        self, n_boot: int = 200, seed: int = 0, ground_truth: str | None = "labeled", ci: float = 0.95
    ) -> pd.DataFrame:
        """Global rankings from the verdicts, and from ground-truth metrics when the pool has them.

        Each source is ranked per connected component (:func:`mdc_widgets.ranking.rank_sources`).
        ``ground_truth`` says which (sample, pair)s the ground-truth source
        compares: those with a verdict (``"labeled"``, falling back to
        ``"selected"`` before any verdict), the results' selected sets
        (``"selected"``) or every pair on the whole pool (``"pool"``); ``None``
        skips it.

        Parameters
        ----------
        n_boot : int, optional
            Bootstrap replicates of each ranking.
        seed : int, optional
            Seeds the bootstrap.
        ground_truth : {"labeled", "selected", "pool"} or None, optional
            Which comparisons the ground-truth source makes (see above).
        ci : float, optional
            Interval coverage in (0, 1).

        Returns
        -------
        pandas.DataFrame
            ``source, component, model, task, strength, ci_low, ci_high, win_rate, n_comparisons, rank``.
        """
        sources: list[tuple[str, pd.DataFrame]] = []
        labels = self.labels.to_frame()
        if len(labels):
            sources.append(("labels", labels[["sample", "model_a", "model_b", "verdict"]]))
        predicted = self.predicted_models()
        if ground_truth is not None and self.ground_truth() is not None and predicted:
            on = ground_truth if (ground_truth != "labeled" or len(labels)) else "selected"
            pairs_samples = comparison_samples(
                on, labels=self.labels, results=self.results.values(), models=predicted, sample_ids=self.pool.sample_ids
            )
            if pairs_samples:
                samples = None if on == "pool" else sorted({s for ids in pairs_samples.values() for s in ids})
                comparisons = ground_truth_comparisons(self.evaluation(samples), pairs_samples, self.model_task)
                if len(comparisons):
                    sources.append(("ground truth", comparisons))
        return rank_sources(sources, self.task_or_none, n_boot=n_boot, seed=seed, ci=ci)

    # -- figures ---------------------------------------------------------------------------
    def scatter_pairs(
        self, result: str | xr.Dataset | None = None
    ) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
        """The intra-task pair and the cross-task pairs the scatter compares (:func:`mdc_widgets.views.scatter_pairs`).

        Parameters
        ----------
        result : str or xarray.Dataset or None, optional
            A mining result or its key; None: the latest.

        Returns
        -------
        intra : tuple of 2 str or None
            The intra-task pair, or None.
        cross : list of tuple of 2 str
            The cross-task pairs.
        """
        group = group_of(self.result(result))
        return views.scatter_pairs(group)

    def figures(
        self, result: str | xr.Dataset | None = None, subset: str = "pool", n_boot: int = 100
    ) -> dict[str, Any]:
        """The plotly figures of the investigation (:func:`mdc_widgets.views.investigation_figures`).

        ``subset`` is ``"pool"`` or ``"selected"`` (the heatmap's samples).
        Figures that need a mining result are left out before there is one.

        Parameters
        ----------
        result : str or xarray.Dataset or None, optional
            A mining result or its key; None: the latest.
        subset : {"pool", "selected"}, optional
            The heatmap's samples.
        n_boot : int, optional
            Bootstrap replicates of the ranking figure.

        Returns
        -------
        dict of {str: object}
            Plotly figures by name.
        """
        discrepancy = self.discrepancy()
        result = self._result_or_none(result)
        return views.investigation_figures(discrepancy, result, self.ranking(n_boot=n_boot), subset)

    # -- the app's state across kernel restarts: mdc_widgets.state.restore_app_state(session) ----
    @property
    def state_folder(self) -> Path:
        """Where the app's state is kept: beside the verdicts (``<store>`` unless ``labels=`` moved them)."""
        return Path(self.labels.path).parent

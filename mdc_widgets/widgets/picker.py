"""Pick a competition: the task, the competitors, the weights of the terms, k and the diversity switches."""

from __future__ import annotations

from typing import Any

from mdc_widgets.errors import MdcError
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights

__all__ = ["PROTOCOL_OPTIONS", "TASKS", "CompetitionPicker"]

TASKS = (
    ("SS pair", "ss"),
    ("SOD pair", "sod"),
    ("Cross-task", "cross"),
    ("Joint", "joint"),
)
_TASK_TIPS = (
    "Two semantic-segmentation models (single-task MAD, SS-C)",
    "Two salient-object-detection models (single-task MAD, SOD-C)",
    "One SS model's foreground against one SOD model's saliency",
    "Two SS and two SOD models, intra- and cross-task terms together (GHS)",
)
# which dropdowns and weights a task uses; the others are switched off
PROTOCOL_OPTIONS = (
    ("MDC (ours): joint top-k", "mdc"),
    ("IJCV 2021 MAD: defenders, per-class bands", "ijcv2021"),
)
_MODELS = {
    "ss": ("ss_a", "ss_b"),
    "sod": ("sod_p", "sod_q"),
    "cross": ("ss_a", "sod_p"),
    "joint": ("ss_a", "ss_b", "sod_p", "sod_q"),
}
# a task's weights are its natural weights' terms (mining.Weights.for_kind): one home for "SS-only is (1, 0, 0)"
_USES = {task: {"models": models, "weights": Weights.for_kind(task).terms} for task, models in _MODELS.items()}
# the selection sliders start at the constraints' own defaults (0.97, (0.005, 0.95)), written once in mining
_DEFAULTS = Constraints()


class CompetitionPicker:
    """Widgets that describe one MAD competition; :meth:`spec` turns them into core arguments.

    Parameters
    ----------
    session : Session
        A :class:`mdc_widgets.session.Session` (for the model lists).
    task : str, optional
        ``"ss"``, ``"sod"``, ``"cross"`` or ``"joint"``.
    k : int, optional
        How many samples to select.
    """

    def __init__(self, session: Any, task: str = "joint", k: int = 20):
        import ipywidgets as W

        self.session = session
        wide = {"description_width": "110px"}
        self.task = W.ToggleButtons(
            options=TASKS,
            value=task,
            description="Competition",
            tooltips=list(_TASK_TIPS),
            style={"description_width": "110px", "button_width": "95px"},
        )
        self.ss_a = W.Dropdown(description="SS model A", style=wide)
        self.ss_b = W.Dropdown(description="SS model B", style=wide)
        self.sod_p = W.Dropdown(description="SOD model P", style=wide)
        self.sod_q = W.Dropdown(description="SOD model Q", style=wide)
        slider = {"min": 0.0, "max": 2.0, "step": 0.1, "readout_format": ".1f", "style": wide}
        self.w_ss = W.FloatSlider(value=1.0, description="weight SS", **slider)
        self.w_sod = W.FloatSlider(value=1.0, description="weight SOD", **slider)
        self.w_cross = W.FloatSlider(value=1.0, description="weight cross", **slider)
        # a plain IntText: a value out of range is corrected here, with a note, never silently
        self.k = W.IntText(value=int(k), description="k (samples)", style=wide)
        self.note = W.HTML()
        self.use_area = W.Checkbox(
            value=_DEFAULTS.foreground_area is not None, description="foreground-area bounds", indent=False
        )
        self.area = W.FloatRangeSlider(
            value=_DEFAULTS.foreground_area,
            min=0.0,
            max=1.0,
            step=0.005,
            readout_format=".3f",
            description="area",
            style=wide,
        )
        self.use_dedup = W.Checkbox(
            value=_DEFAULTS.dedup_threshold is not None, description="near-duplicate suppression", indent=False
        )
        self.dedup = W.FloatSlider(
            value=_DEFAULTS.dedup_threshold,
            min=0.5,
            max=1.0,
            step=0.01,
            readout_format=".2f",
            description="max similarity",
            style=wide,
        )
        self.use_quota = W.Checkbox(value=False, description="per-class quota", indent=False)
        self.quota = W.BoundedIntText(value=5, min=1, max=100_000, description="per class", style=wide)
        self.disjoint = W.Checkbox(value=False, description="disjoint from earlier results", indent=False)
        self.protocol = W.Dropdown(
            options=PROTOCOL_OPTIONS,
            value="mdc",
            description="protocol",
            style=wide,
            tooltip="ijcv2021: the published MAD rule for one SS pair (our analogue for SOD)",
        )
        self.fusion = W.Dropdown(options=["rank", "raw", "minmax"], value="rank", description="fusion", style=wide)
        self.use_confidence = W.Checkbox(value=False, description="both models confident (ICLR 2020)", indent=False)
        self.confidence = W.FloatSlider(
            value=0.8, min=0.0, max=1.0, step=0.05, readout_format=".2f", description="min confidence", style=wide
        )
        import torch

        devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        self.device = W.Dropdown(options=devices, value="auto", description="device", style=wide)

        models = W.VBox([W.HBox([self.ss_a, self.ss_b]), W.HBox([self.sod_p, self.sod_q])])
        weights = W.VBox([self.w_ss, self.w_sod, self.w_cross])
        switches = W.VBox(
            [
                W.HBox([self.use_area, self.area]),
                W.HBox([self.use_dedup, self.dedup]),
                W.HBox([self.use_quota, self.quota]),
                W.HBox([self.use_confidence, self.confidence]),
                self.disjoint,
            ]
        )
        # released maps (a folder of PNGs per method, as SOD benchmarks distribute them) join the model lists
        self.maps_name = W.Text(placeholder="name, e.g. picanet", description="Released maps", style=wide)
        self.maps_folder = W.Text(placeholder="/path/to/the/maps", layout=W.Layout(width="320px"))
        self.maps_task = W.Dropdown(
            options=[("saliency maps", "sod"), ("label maps, VOC classes", "ss")],
            value="sod",
            layout=W.Layout(width="190px"),
        )
        self.maps_add = W.Button(
            description="Add", icon="plus", tooltip="check the maps against the pool and offer them"
        )
        self.maps_status = W.HTML()
        self.maps_add.on_click(lambda _: self.add_maps())
        # a chosen model whose checkpoint is absent: a file for it, or random weights for a dry run
        self.weights_note = W.HTML()
        self.checkpoint_path = W.Text(
            placeholder="/path/to/checkpoint.pth", description="Checkpoint", style=wide, layout=W.Layout(width="420px")
        )
        self.checkpoint_button = W.Button(
            description="Use this file", icon="folder-open", tooltip="Load the chosen model from this checkpoint"
        )
        self.random_button = W.Button(
            description="Random weights", icon="random", tooltip="Dry run: the real architecture, untrained weights"
        )
        self.checkpoint_button.on_click(lambda _: self.use_checkpoint(self.checkpoint_path.value.strip() or ""))
        self.random_button.on_click(lambda _: self.use_checkpoint(None))
        self.checkpoint_box = W.VBox(
            [self.weights_note, W.HBox([self.checkpoint_path, self.checkpoint_button, self.random_button])],
            layout=W.Layout(display="none"),
        )
        self.widget = W.VBox(
            [
                self.task,
                models,
                self.checkpoint_box,
                W.HBox([self.maps_name, self.maps_folder, self.maps_task, self.maps_add]),
                self.maps_status,
                W.HTML("<b>Weights of the terms</b>"),
                weights,
                W.HTML("<b>Selection</b>"),
                W.HBox([self.protocol, self.fusion]),
                W.HBox([self.k, self.device]),
                self.note,
                switches,
            ]
        )
        self.k.observe(lambda _: self._check_k(), "value")
        self.task.observe(self._on_task, "value")
        self.protocol.observe(self._on_protocol, "value")
        for box, control in (
            (self.use_area, self.area),
            (self.use_dedup, self.dedup),
            (self.use_quota, self.quota),
            (self.use_confidence, self.confidence),
        ):
            box.observe(lambda change, c=control: setattr(c, "disabled", not change["new"]), "value")
        self.quota.disabled = not self.use_quota.value
        self.confidence.disabled = not self.use_confidence.value
        self._refreshing = False
        for first, second in ((self.ss_a, self.ss_b), (self.sod_p, self.sod_q)):
            first.observe(lambda change, other=second: self._keep_distinct(change, other), "value")
            second.observe(lambda change, other=first: self._keep_distinct(change, other), "value")
        for name in ("ss_a", "ss_b", "sod_p", "sod_q"):
            getattr(self, name).observe(lambda _: self._check_weights(), "value")
        self.refresh_models()
        self._on_task()
        self._check_k()

    # -- notes about corrected or unusable choices -----------------------------------------
    def _say(self, message: str, kind: str = "warning") -> None:
        from mdc_widgets.widgets._util import status_html

        self.note.value = status_html(message, kind) if message else ""

    def _check_k(self) -> None:
        n = max(len(self.session.pool), 1)
        value = int(self.k.value)
        if 1 <= value <= n:
            return
        fixed = min(max(value, 1), n)
        self.k.value = fixed  # observed again, now in range
        self._say(
            f"k = {value} is not possible: the pool has {n} images and at least 1 must be selected; "
            f"k is set to {fixed}."
        )

    def missing(self) -> dict[str, str]:
        """The chosen models (of the current task) whose checkpoint is absent: ``{model: why}``."""
        check = getattr(self.session, "models_without_weights", None)
        if check is None:
            return {}
        chosen = [getattr(self, n).value for n in _USES[self.task.value]["models"]]
        return check([m for m in dict.fromkeys(chosen) if m])

    def _check_weights(self) -> None:
        if self._refreshing:
            return
        import html

        missing = self.missing()
        self.checkpoint_box.layout.display = "flex" if missing else "none"
        self.weights_note.value = (
            "<span style='color:#a66b00;font-size:12px'>"
            + "<br>".join(
                f"&#9888; <b>{html.escape(m)}</b>: {html.escape(why)}. Give its checkpoint file, or choose random "
                "weights for a dry run."
                for m, why in missing.items()
            )
            + "</span>"
            if missing
            else ""
        )

    def use_checkpoint(self, checkpoint: str | None) -> bool:
        """Load the first chosen model that lacks weights from ``checkpoint`` (None: random weights).

        ``Session.use_checkpoint`` does the work; the note says what happened.

        Parameters
        ----------
        checkpoint : str or None
            Path of a state_dict file; None for random weights; ``""`` only asks for a path.

        Returns
        -------
        bool
            True when the model's weights were set, False otherwise (the note says why).
        """
        missing = self.missing()
        if not missing:
            self._say("Every chosen model has its weights; nothing to do.", "info")
            return False
        model = next(iter(missing))
        if checkpoint == "":
            self._say(f"Type the path of {model}'s checkpoint file first.")
            return False
        try:
            self.session.use_checkpoint(model, checkpoint)
        except MdcError as exc:
            self._say(str(exc), "error")
            return False
        self.refresh_models()
        self._check_weights()
        how = f"the checkpoint {checkpoint}" if checkpoint else "random weights (a dry run: its results mean nothing)"
        self._say(f"{model} will run with {how}.", "ok")
        return True

    # -- model lists -----------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Re-read the models the session offers for each task, keeping current choices."""
        self._refreshing = True
        try:
            check = getattr(self.session, "models_without_weights", None)
            for task, (first, second) in (("ss", (self.ss_a, self.ss_b)), ("sod", (self.sod_p, self.sod_q))):
                names = list(self.session.available_models(task))
                missing = set(check(names)) if check is not None else set()
                # models that can run come first; the others are marked in the list itself
                names = [n for n in names if n not in missing] + [n for n in names if n in missing]
                options = [(f"{n} (no weights)" if n in missing else n, n) for n in names] if missing else names
                keep = (first.value, second.value)
                first.options, second.options = options, options
                first.value = keep[0] if keep[0] in names else (names[0] if names else None)
                others = [n for n in names if n != first.value]
                second.value = keep[1] if keep[1] in others else (others[0] if others else None)
        finally:
            self._refreshing = False
        self._check_weights()

    def add_maps(self) -> bool:
        """Offer the typed folder of released maps (``Session.add_maps``); the status says what went wrong."""
        from mdc_widgets.widgets._util import status_html

        classes = None
        if self.maps_task.value == "ss":
            from mdc_widgets.models.torchvision_adapters import VOC_CLASSES

            classes = VOC_CLASSES
        try:
            competitor = self.session.add_maps(
                self.maps_name.value, self.maps_folder.value.strip(), self.maps_task.value, classes
            )
        except MdcError as exc:
            self.maps_status.value = status_html(str(exc), "error")
            return False
        self.refresh_models()
        self.maps_status.value = status_html(
            f"{competitor.name}: {competitor.description} (no inference needed).", "ok"
        )
        return True

    def _keep_distinct(self, change: dict, other: Any) -> None:
        # a pair of one model is no competition: picking the other's model swaps the two
        if not self._refreshing and change["new"] is not None and change["new"] == other.value:
            spare = [v for v in self._values(other) if v != change["new"]]
            other.value = change["old"] if change["old"] in spare else (spare[0] if spare else None)
            self._say(
                f"{change['new']} was already chosen as {other.description}; a model cannot compete with "
                f"itself, so {other.description} is now {other.value}."
            )

    @staticmethod
    def _values(dropdown: Any) -> list[Any]:
        return [o[1] if isinstance(o, tuple) else o for o in dropdown.options]

    def _on_protocol(self, change: dict | None = None) -> None:
        # the published rule has its own size band and per-class quota: our switches do not apply
        published = self.protocol.value == "ijcv2021"
        for box in (self.use_area, self.use_dedup, self.use_quota):
            box.disabled = published

    def _on_task(self, change: dict | None = None) -> None:
        task = self.task.value
        uses = _USES[task]
        # the IJCV 2021 rule mines one pair of one task
        if task not in ("ss", "sod"):
            self.protocol.value = "mdc"
        self.protocol.disabled = task not in ("ss", "sod")
        for name in ("ss_a", "ss_b", "sod_p", "sod_q"):
            getattr(self, name).disabled = name not in uses["models"]
        for term in ("ss", "sod", "cross"):
            slider = getattr(self, f"w_{term}")
            slider.disabled = term not in uses["weights"]
            if change is not None or task != "joint":
                # a fresh task starts from its natural weights; a single-term task has weight 1
                slider.value = 1.0 if term in uses["weights"] else 0.0

    # -- what the widgets describe ---------------------------------------------------------
    def group(self) -> CompetitionGroup:
        """The competition group of the chosen task and models.

        Returns
        -------
        CompetitionGroup
            The chosen SS and/or SOD models.

        Raises
        ------
        MdcError
            When a model slot of the task is empty, or a chosen model has no weights.
        """
        chosen = {name: getattr(self, name).value for name in _USES[self.task.value]["models"]}
        missing = [name for name, value in chosen.items() if not value]
        if missing:
            raise MdcError(f"Choose a model for {', '.join(missing)}; the session offers none for that task yet.")
        absent = self.missing()
        if absent:
            model, why = next(iter(absent.items()))
            raise MdcError(
                f"{model} cannot run: {why}. Give its checkpoint file above the weights, or choose random weights "
                "for a dry run, or pick another model."
            )
        ss = tuple(chosen[n] for n in ("ss_a", "ss_b") if n in chosen)
        sod = tuple(chosen[n] for n in ("sod_p", "sod_q") if n in chosen)
        return CompetitionGroup(ss=ss, sod=sod)

    def weights(self) -> Weights:
        """The term weights (terms the task has not are 0).

        Returns
        -------
        Weights
            ``ss``, ``sod`` and ``cross`` weights from the sliders.

        Raises
        ------
        MdcError
            When every weight of the task is 0.
        """
        uses = _USES[self.task.value]["weights"]
        values = {t: float(getattr(self, f"w_{t}").value) if t in uses else 0.0 for t in ("ss", "sod", "cross")}
        if sum(values.values()) <= 0:
            raise MdcError(f"Every weight of the {self.task.value} competition is 0; raise at least one.")
        return Weights(**values)

    def constraints(self) -> Constraints:
        """The switched-on diversity constraints."""
        return Constraints(
            foreground_area=tuple(self.area.value) if self.use_area.value else None,
            dedup_threshold=float(self.dedup.value) if self.use_dedup.value else None,
            max_per_class=int(self.quota.value) if self.use_quota.value else None,
            min_confidence=float(self.confidence.value) if self.use_confidence.value else None,
        )

    def spec(self) -> dict[str, Any]:
        """Everything a run needs: ``group, weights, k, constraints, device, disjoint, protocol, fusion`` (validated).

        Returns
        -------
        dict of {str: object}
            The keyword arguments of a run, keyed as above.

        Raises
        ------
        MdcError
            When the ijcv2021 protocol is chosen for a cross or joint task, or :meth:`group` or
            :meth:`weights` refuses the settings.
        """
        if self.protocol.value == "ijcv2021" and self.task.value not in ("ss", "sod"):
            raise MdcError(
                f"The ijcv2021 protocol mines one SS or one SOD pair; choose the SS or SOD pair task "
                f"or the mdc protocol for {self.task.value!r}."
            )
        return {
            "group": self.group(),
            "weights": self.weights(),
            "k": int(self.k.value),
            "constraints": self.constraints(),
            "device": self.device.value,
            "disjoint": bool(self.disjoint.value),
            "protocol": self.protocol.value,
            "fusion": self.fusion.value,
        }

    # -- the app's saved state -------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The picker's settings as plain values (saved by the app, see :class:`mdc_widgets.state.AppState`)."""
        return {
            "task": self.task.value,
            "models": {n: getattr(self, n).value for n in ("ss_a", "ss_b", "sod_p", "sod_q")},
            "weights": {t: float(getattr(self, f"w_{t}").value) for t in ("ss", "sod", "cross")},
            "k": int(self.k.value),
            "protocol": self.protocol.value,
            "fusion": self.fusion.value,
        }

    def apply_state(self, state: dict[str, Any]) -> None:
        """Set the widgets from :meth:`state`'s dict; models no longer offered keep the current choice.

        Parameters
        ----------
        state : dict of {str: object}
            ``task``, ``models``, ``weights``, ``k``, ``protocol``, ``fusion``; each may be missing.
        """
        if state.get("task") in dict((v, v) for _, v in TASKS):
            self.task.value = state["task"]
        for name, value in (state.get("models") or {}).items():
            dropdown = getattr(self, name, None)
            if dropdown is not None and value in self._values(dropdown):
                self._refreshing = True  # a restored pair is distinct already: no swap, no note
                try:
                    dropdown.value = value
                finally:
                    self._refreshing = False
        for term, value in (state.get("weights") or {}).items():
            slider = getattr(self, f"w_{term}", None)
            if slider is not None and not slider.disabled:
                slider.value = float(value)
        if state.get("k"):
            self.k.value = int(state["k"])
        if state.get("protocol") in ("mdc", "ijcv2021") and not self.protocol.disabled:
            self.protocol.value = state["protocol"]
        if state.get("fusion") in self.fusion.options:
            self.fusion.value = state["fusion"]
        self._check_weights()

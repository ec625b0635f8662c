"""Why did a model predict that? Grad-CAM (SS) or saliency + CAM (SOD) beside the prediction."""

from __future__ import annotations

import html
from typing import Any

from mdc_widgets.errors import MdcError
from mdc_widgets.widgets._util import captioned, status_html

__all__ = ["ExplainPanel"]


class ExplainPanel:
    """Model, class and layer dropdowns; Explain shows the CAM of the browser's current sample.

    Parameters
    ----------
    session : Session
        The :class:`~mdc_widgets.session.Session`.
    browser : SampleBrowser or None, optional
        A :class:`~mdc_widgets.widgets.SampleBrowser`; opening a sample there selects it here.
    scale : int, optional
        Largest nearest-neighbour enlargement of the image and map tiles.
    """

    def __init__(self, session: Any, browser: Any = None, scale: int = 3):
        import ipywidgets as W

        self.session = session
        self.scale = scale
        self.sample_id: str | None = None
        self.last: dict[str, Any] | None = None
        self.model = W.Dropdown(description="Model")
        self.target = W.Dropdown(options=[("predicted class", None)], value=None, description="Class")
        self.layer = W.Dropdown(options=[("default", None)], value=None, description="Layer")
        self.explain_button = W.Button(
            description="Explain",
            icon="search",
            button_style="info",
            tooltip="Compute the class activation map of this model on this sample",
        )
        self.header = W.HTML(status_html("Open a sample in the Browse tab first."))
        self.status = W.HTML()
        self.output = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.widget = W.VBox(
            [self.header, W.HBox([self.model, self.target, self.layer, self.explain_button]), self.status, self.output]
        )
        self.model.observe(lambda _: self._on_model(), "value")
        self.explain_button.on_click(lambda _: self.explain())
        if browser is not None:
            browser.on_open(self.set_sample)
        self.refresh_models()

    def refresh_models(self) -> None:
        """Offer the current result's models (else every predicted model)."""
        try:
            from mdc_widgets.session import group_of

            names = list(group_of(self.session.result()).models)
        except MdcError:
            names = list(self.session.predicted_models())
        keep = self.model.value
        self.model.options = names
        if names:
            self.model.value = keep if keep in names else names[0]

    def _on_model(self) -> None:
        name = self.model.value
        if not name:
            return
        try:
            comp = self.session.competitor(name)
            from mdc_widgets.explain import list_cam_layers

            layers = list_cam_layers(comp)
        except Exception as exc:  # a model that cannot be built cannot be explained; say why
            self.status.value = status_html(f"Cannot load {name}: {exc}", "error")
            return
        classes = [("predicted class", None)]
        if comp.task == "ss":
            classes += [(c, i) for i, c in enumerate(comp.classes) if i > 0]
        self.target.options, self.target.value = classes, None
        self.target.disabled = comp.task != "ss"
        default = getattr(comp, "cam_layer", None)
        self.layer.options = [(f"default ({default or 'last conv'})", None)] + [(layer, layer) for layer in layers]
        self.layer.value = None
        self.status.value = ""

    def set_sample(self, sample_id: str) -> None:
        """Explain ``sample_id`` next (called by the browser when a sample is opened).

        Parameters
        ----------
        sample_id : str
            The sample; the previous explanation is cleared.
        """
        self.sample_id = str(sample_id)
        self.header.value = f"<b>Sample {html.escape(self.sample_id)}</b>"
        self.output.children = []

    def explain(self) -> dict[str, Any] | None:
        """Run :meth:`Session.explain` with the dropdowns' values and show the maps."""
        if self.sample_id is None:
            self.status.value = status_html("Open a sample in the Browse tab first.", "warning")
            return None
        if not self.model.value:
            self.status.value = status_html("No model to explain; run a competition first.", "warning")
            return None
        self.status.value = status_html(f"Explaining {self.model.value} on {self.sample_id}...")
        try:
            out = self.session.explain(
                self.sample_id, self.model.value, target_class=self.target.value, layer=self.layer.value
            )
        except Exception as exc:  # Grad-CAM failures (no conv layer, ...) are shown, not raised into the UI
            self.status.value = status_html(f"Cannot explain {self.model.value}: {exc}", "error")
            return None
        self.last = out
        tiles = [
            captioned("image", out["image"], scale=self.scale),
            captioned(f"{out['model']} prediction", out["prediction_overlay"], legend=out["legend"], scale=self.scale),
        ]
        if out["task"] == "sod":
            tiles.append(captioned("saliency", out["saliency_overlay"], scale=self.scale))
        if out.get("cam_overlay") is None:  # released maps: nothing to open up, the note says why
            self.output.children = tiles
            self.status.value = status_html(out.get("note", "No class activation map for this model."), "warning")
            return out
        tiles.append(
            captioned(
                f"Grad-CAM: {out['target_name']} @ {out['layer'] or 'last conv'}", out["cam_overlay"], scale=self.scale
            )
        )
        self.output.children = tiles
        self.status.value = status_html(f"Grad-CAM of {out['model']} for '{out['target_name']}'.", "ok")
        return out

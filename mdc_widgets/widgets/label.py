"""Say which model is right: verdict buttons for the current sample and pair, saved at once, live ranking."""

from __future__ import annotations

import html
from itertools import combinations
from typing import Any

from mdc_widgets.errors import MdcError
from mdc_widgets.widgets._util import captioned, html_table, status_html

__all__ = ["LabelPanel"]


class LabelPanel:
    """A / B / both wrong / both fine buttons and "accept mask" for the browser's current sample.

    Every click is written to the session's label store before the panel
    updates, and the ranking below is recomputed from all labels so far.

    Parameters
    ----------
    session : Session
        The :class:`~mdc_widgets.session.Session`.
    browser : SampleBrowser or None, optional
        A :class:`~mdc_widgets.widgets.SampleBrowser` (its current sample is labelled;
        with ``advance`` the next one opens after a verdict).
    n_boot : int, optional
        Bootstrap resamples of the live ranking.
    advance : bool, optional
        Start with "open the next sample after a verdict" ticked (needs ``browser``).
    """

    def __init__(self, session: Any, browser: Any = None, n_boot: int = 100, advance: bool = True):
        import ipywidgets as W

        self.session = session
        self.browser = browser
        self.n_boot = n_boot
        self.sample_id: str | None = None
        # the pair to offer first when it is among the result's pairs (the app restores the last one)
        self.preferred_pair: tuple[str, str] | None = None
        self.pair = W.Dropdown(description="Pair", layout=W.Layout(width="420px"))
        self.a_button = W.Button(
            description="A is better", button_style="success", tooltip="Model A is right (more so)"
        )
        self.b_button = W.Button(
            description="B is better", button_style="success", tooltip="Model B is right (more so)"
        )
        self.both_wrong_button = W.Button(description="Both wrong", button_style="danger", tooltip="Neither is right")
        self.both_fine_button = W.Button(description="Both fine", button_style="info", tooltip="Both are right")
        self.mask_model = W.Dropdown(description="Mask of", layout=W.Layout(width="300px"))
        self.accept_button = W.Button(
            description="Accept mask",
            icon="check",
            tooltip="Keep this model's prediction as the sample's corrected mask",
        )
        self.advance = W.Checkbox(value=advance, description="open the next sample after a verdict", indent=False)
        self.header = W.HTML(status_html("Open a sample in the Browse tab, then give a verdict."))
        self.views = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.status = W.HTML()
        self.ranking_html = W.HTML()
        self.widget = W.VBox(
            [
                self.header,
                self.pair,
                self.views,
                W.HBox([self.a_button, self.b_button, self.both_wrong_button, self.both_fine_button]),
                W.HBox([self.mask_model, self.accept_button]),
                self.advance,
                self.status,
                W.HTML("<b>Ranking from the labels so far</b>"),
                self.ranking_html,
            ]
        )
        for button, verdict in (
            (self.a_button, "a"),
            (self.b_button, "b"),
            (self.both_wrong_button, "both_wrong"),
            (self.both_fine_button, "both_fine"),
        ):
            button.on_click(lambda _, v=verdict: self.label(v))
        self.accept_button.on_click(lambda _: self.accept_mask())
        self.pair.observe(lambda _: self._on_pair(), "value")
        if browser is not None:
            browser.on_open(self.set_sample)
        self.refresh_pairs()
        self.refresh_ranking()

    # -- pairs and sample ------------------------------------------------------------------
    def refresh_pairs(self) -> None:
        """Offer the current result's pairs (else every pair of predicted models)."""
        from mdc_widgets.session import group_of, group_pairs

        try:
            pairs = group_pairs(group_of(self.session.result()))
        except MdcError:
            names = self.session.predicted_models()
            pairs = [(a, b, "") for a, b in combinations(names, 2)]
        keep = self.pair.value
        options = [(f"{a} vs {b}" + (f" ({k})" if k else ""), (a, b)) for a, b, k in pairs]
        self.pair.options = options
        values = [v for _, v in options]
        if self.preferred_pair in values:
            keep, self.preferred_pair = self.preferred_pair, None  # used once: later choices are the user's
        if values:
            self.pair.value = keep if keep in values else values[0]
        self._on_pair()

    def _on_pair(self) -> None:
        if not self.pair.value:
            return
        a, b = self.pair.value
        self.a_button.description, self.b_button.description = f"A: {a}"[:22], f"B: {b}"[:22]
        self.a_button.tooltip, self.b_button.tooltip = f"{a} is better on this sample", f"{b} is better on this sample"
        self.mask_model.options = [a, b]
        self.mask_model.value = a
        if self.sample_id is not None:
            self._show_sample()

    def set_sample(self, sample_id: str) -> None:
        """Label ``sample_id`` next (called by the browser when a sample is opened).

        Parameters
        ----------
        sample_id : str
            The sample whose pair is shown and labelled.
        """
        self.sample_id = str(sample_id)
        self._show_sample()

    def _show_sample(self) -> None:
        if not self.pair.value:
            return
        a, b = self.pair.value
        try:
            detail = self.session.sample_detail(self.sample_id, models=[a, b])
        except MdcError as exc:
            self.status.value = status_html(str(exc), "error")
            return
        current = self.session.labels.get(self.sample_id, a, b)
        verdict = f" - current verdict: <b>{html.escape(current.verdict)}</b>" if current else ""
        self.header.value = f"<b>Sample {html.escape(self.sample_id)}</b>{verdict}"
        tiles = [captioned("image", detail["image"])]
        tiles += [
            captioned(f"{tag}: {m}", detail["predictions"][m]["overlay"], legend=detail["predictions"][m]["legend"])
            for tag, m in (("A", a), ("B", b))
        ]
        tiles += [
            captioned(f"disagreement ({d['fraction']:.0%})", d["overlay"]) for d in detail["disagreement"].values()
        ]
        self.views.children = tiles

    # -- actions ---------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.sample_id is None or not self.pair.value:
            self.status.value = status_html("Open a sample (Browse tab) and choose a pair first.", "warning")
            return False
        return True

    def label(self, verdict: str) -> Any:
        """Save ``verdict`` for the current sample and pair; then refresh the ranking (and advance).

        Parameters
        ----------
        verdict : str
            One of the label store's verdicts (``Session.label`` checks it).

        Returns
        -------
        object
            The saved label, or None when nothing was saved (the status says why).
        """
        if not self._ready():
            return None
        a, b = self.pair.value
        try:
            saved = self.session.label(self.sample_id, a, b, verdict)
        except MdcError as exc:
            self.status.value = status_html(str(exc), "error")
            return None
        self.status.value = status_html(
            f"Saved: {self.sample_id}, {a} vs {b} -> {verdict} ({len(self.session.labels)} labels).", "ok"
        )
        self.refresh_ranking()
        if self.advance.value and self.browser is not None:
            self.browser.open_next()
        else:
            self._show_sample()
        return saved

    def accept_mask(self) -> Any:
        """Keep the chosen model's prediction as the sample's accepted mask."""
        if not self._ready():
            return None
        a, b = self.pair.value
        try:
            saved = self.session.accept_mask(self.sample_id, a, b, self.mask_model.value)
        except MdcError as exc:
            self.status.value = status_html(str(exc), "error")
            return None
        self.status.value = status_html(f"Accepted the mask of {self.mask_model.value} for {self.sample_id}.", "ok")
        self.refresh_ranking()
        return saved

    def refresh_ranking(self) -> None:
        """Recompute the ranking table from every label (and ground truth when the pool has it)."""
        try:
            ranking = self.session.ranking(n_boot=self.n_boot)
        except MdcError as exc:
            self.ranking_html.value = status_html(str(exc), "warning")
            return
        if not len(ranking):
            self.ranking_html.value = status_html("No labels yet.")
            return
        shown = ranking[["source", "model", "rank", "strength", "ci_low", "ci_high", "win_rate", "n_comparisons"]]
        self.ranking_html.value = html_table(shown)

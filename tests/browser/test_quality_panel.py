"""The models page's live-quality panel in a real headless Chromium, over predictions logged in the service's
database: the drift flag, the latest window's figures and the plot."""
from __future__ import annotations

import pytest

from tests.core.test_quality import add_version, in_the_current_window, insert_rows, prediction

pytestmark = [pytest.mark.service, pytest.mark.browser]


def test_the_quality_panel_shows_the_drift_flag_and_the_plot(tab, api_url, db_session):
    # a dataset of its own: no other test predicts with this version or lists its dataset
    version = add_version(db_session, dataset="quality-panel", train_label_counts={"a": 50, "b": 50})
    # all 150 in the hour the panel shows: a second apart back from now, they once straddled 17:00
    insert_rows(db_session, [prediction(version, at, "a") for at in in_the_current_window(150)])
    tab.open(f"/models?quality={version.id}")
    flag = tab.page.locator("#drift-flag")
    flag.wait_for(timeout=15_000)
    assert flag.inner_text() == "drift"  # 150 files all read "a" against a 50/50 training split
    assert tab.page.inner_text("#quality-requests") in ("150", "0")  # "0" only if an hour began as the page loaded
    tab.page.wait_for_function(
        "() => { const i = document.getElementById('quality-plot'); return i && i.complete && i.naturalWidth > 300; }",
        timeout=15_000)
    assert "label JS" in tab.page.inner_text("#quality")
    tab.screenshot("quality")

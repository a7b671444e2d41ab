"""The explorer page (`warmstart serve` at /) in a real browser, against a real server.

The server holds a tiny classifier and tiny word vectors (tests/test_embed.py) behind an API
key. Debian's ``chromium`` is driven by Playwright with ``executable_path`` (Playwright's own
browser download is never used): the page asks for the key, classifies a sentence, lists a
word's neighbours, solves an analogy and draws the word map. Without chromium (or Playwright)
the browser test is skipped, except under ``CI=1``, where it fails: ``make test`` installs
chromium with apt-get when it can.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from test_embed import tiny_models  # noqa: E402
from test_serve import Server, start  # noqa: E402

KEY = "explorer-key-42"
SENTENCE = "A wonderful film with a moving story"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_models(tmp_path_factory.mktemp("explorer-models"))


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start([f"clf={models['clf']}", f"vectors={models['vectors']}", "--precision", "fp32",
               "--api-key", KEY], tmp_path_factory.mktemp("explorer") / "server.log", key=KEY)
    yield s
    assert s.stop() == 0, s.log.read_text()


def chromium_path() -> str | None:
    return os.environ.get("WARMSTART_CHROMIUM") or shutil.which("chromium")


def missing(what: str) -> NoReturn:
    """Skip, or under CI=1 fail: a CI run must exercise the page."""
    message = (f"{what}; install it with `apt-get install -y chromium` and "
               "`pip install -e '.[test]'` (make test does both), or point WARMSTART_CHROMIUM "
               "at a Chromium binary")
    if os.environ.get("CI") in ("1", "true"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed")
    path = chromium_path()
    if path is None:
        missing("Debian's chromium is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


def test_page_and_its_files_need_no_key_but_the_data_does(server: Server) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert httpx.get(server.url + asset).status_code == 200, asset
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from the network
    assert httpx.get(server.url + "/static/nothing.js").status_code == 404
    assert httpx.get(server.url + "/v1/models/vectors/map").status_code == 401


def test_map_is_a_pca_of_the_most_frequent_words(server: Server) -> None:
    from warmstart.serving.explorer import word_map

    body = server.get("/v1/models/vectors/map?n=20&method=pca").json()
    assert len(body["words"]) == len(body["points"]) == 20 and body["method"] == "pca"
    assert body["words"] == server.get("/v1/models/vectors/map?n=5000&method=pca").json()["words"][:20]
    pts = np.array(body["points"])
    np.testing.assert_allclose(pts.mean(axis=0), 0, atol=1e-4)  # centred
    assert abs(np.corrcoef(pts.T)[0, 1]) < 1e-3  # principal axes are uncorrelated
    assert pts[:, 0].var() >= pts[:, 1].var() and sum(body["explained"]) <= 1
    x = np.random.default_rng(0).normal(size=(30, 4)) * [5, 2, 1, 0.1]
    p, explained = word_map(x)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(np.cov(p.T).trace() / np.cov(u.T).trace(), explained.sum())
    assert server.get("/v1/models/vectors/map?n=1").status_code == 422
    r = server.get("/v1/models/vectors/map?method=tsne")
    assert r.status_code == 422 and r.json()["error"]["field"] == "method"
    r = server.get("/v1/models/clf/map")
    assert r.status_code == 400 and r.json()["error"]["field"] == "name"


def test_umap_map_keeps_neighbours_near(server: Server, models: dict[str, Path]) -> None:
    """With umap-learn installed the map defaults to UMAP, which keeps each word near its
    nearest neighbour in the vectors: nearer than PCA keeps it, and than a random word."""
    pytest.importorskip("umap")
    from warmstart.vectors.keyed import KeyedVectors

    umap_body = server.get("/v1/models/vectors/map?n=200").json()
    assert umap_body["method"] == "umap" and umap_body["explained"] is None
    pca_body = server.get("/v1/models/vectors/map?n=200&method=pca").json()
    words = umap_body["words"]
    kv = KeyedVectors.load(models["vectors"])
    unit = kv.vectors[:len(words)] / np.linalg.norm(kv.vectors[:len(words)], axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)

    def neighbour_distance(points: list[list[float]]) -> float:
        """How far a word is from its nearest neighbour, relative to an average pair."""
        p = np.array(points)
        spread = np.linalg.norm(p[:, None] - p[None], axis=-1).mean()
        return float(np.linalg.norm(p - p[nearest], axis=1).mean() / spread)

    assert neighbour_distance(umap_body["points"]) < 0.5
    assert neighbour_distance(umap_body["points"]) < neighbour_distance(pca_body["points"])
    assert server.get("/v1/models/vectors/map?n=200").json() == umap_body  # kept, not redone


def test_explorer_in_a_browser(browser: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(r.url) if not r.url.startswith(server.url)
            else None)
    page.goto(server.url + "/")

    # No key yet: the page asks for one, keeps it for the session and sends it as a bearer.
    expect(page.locator("#key-form")).to_be_visible()
    page.fill("#key", KEY)
    page.click("#key-form button")
    expect(page.locator("#model option")).to_have_count(2)
    expect(page.locator("#key-form")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('warmstart-api-key')") == KEY

    expected = server.post("/v1/models/clf/classify", {"texts": [SENTENCE]}).json()
    page.select_option("#model", "clf")
    page.fill("#text", SENTENCE)
    page.click("#classify-form button")
    expect(page.locator("#label")).to_have_text(expected["results"][0]["label"])
    expect(page.locator("#bars .bar")).to_have_count(2)

    page.select_option("#model", "vectors")
    expect(page.locator("#classify")).to_be_hidden()
    page.fill("#word", "king")
    page.fill("#k", "5")
    page.click("#neighbors-form button")
    expect(page.locator("#neighbors li")).to_have_count(5)
    shown = page.eval_on_selector_all("#neighbors li", "els => els.map(e => e.dataset.word)")
    want = server.get("/v1/models/vectors/neighbors?word=king&k=5").json()["neighbors"]
    assert shown == [n["word"] for n in want]

    page.fill("#a", "man")
    page.fill("#b", "king")
    page.fill("#c", "woman")
    page.click("#analogy-form button")
    expect(page.locator("#analogy li").first).to_have_attribute("data-word", "queen")

    canvas = page.locator("#map")
    n_words = len(server.get("/v1/models/vectors/map?n=300").json()["words"])
    # (A first UMAP layout takes seconds: numba compiles it.)
    expect(canvas).to_have_attribute("data-points", str(n_words), timeout=120_000)
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 600)  # zoom out: every point still drawn
    expect(canvas).to_have_attribute("data-points", str(n_words))
    page.mouse.wheel(0, -2400)  # zoom far in: only some points are left in view
    page.wait_for_function("Number(document.getElementById('map').dataset.points) < "
                           f"{n_words}")
    page.dblclick("#map")  # fit again
    expect(canvas).to_have_attribute("data-points", str(n_words))
    # Hover a point: the tooltip names its word.
    x, y = page.evaluate("() => { const c = document.getElementById('map'); "
                         "const r = c.getBoundingClientRect(); const [x, y] = screen(0); "
                         "return [r.left + x * r.width / c.width, r.top + y * r.height / c.height]; }")
    page.mouse.move(x, y)
    expect(page.locator("#tooltip")).to_be_visible()
    assert page.locator("#tooltip").text_content()

    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    assert not errors, errors
    assert page.locator("#status").text_content() == ""


def test_api_docs_page_works_offline_in_a_browser(browser: Any, server: Server) -> None:
    """/docs renders every route from files this server sends (no CDN), with the key."""
    from playwright.sync_api import expect

    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {KEY}"})
    outside: list[str] = []
    context.route("**/*", lambda route: (route.continue_() if route.request.url.startswith(
        server.url) else (outside.append(route.request.url), route.abort())))
    page = context.new_page()
    page.goto(server.url + "/docs")
    schema = server.get("/openapi.json").json()
    operations = sum(len(methods) for methods in schema["paths"].values())
    expect(page.locator(".opblock")).to_have_count(operations)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    context.close()
    assert not outside, outside

"""Section 14's drawing pad, used as a learner uses it: a real JupyterLab server on localhost, a real Chromium
(Debian's, driven by Playwright), digits drawn with mouse strokes, and the prediction read back from the page.

The small notebook the browser opens loads the notebook's own functions (tests/notebook_module.py) and the
committed model, and shows the pad exactly as the notebook's cell does. The JupyterLab run saves a screenshot of
the pad and its outputs to images/draw_digit.png (shown in the README).
"""

import base64
import io
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image, ImageDraw

from notebook_module import NOTEBOOK, ROOT

CHROMIUM = Path(os.environ.get("NN_CHROMIUM", "/usr/bin/chromium"))  # Debian's: apt-get install chromium
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "images" / "draw_digit.png"
PAD = 280  # the pad's size in pixels


def arc(cx, cy, rx, ry, start, stop, n=14):
    """Points along an ellipse from angle start to stop (degrees; 0 = right, 90 = down on screen)."""
    angles = np.radians(np.linspace(start, stop, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Each digit as a person draws it on the 280 x 280 pad: a few strokes, each a list of (x, y) points.
DIGITS = {
    1: [[(118, 80), (150, 45)], [(150, 45), (148, 140), (146, 235)]],  # the little flag, then the stem
    0: [arc(140, 140, 62, 95, 265, 90), arc(140, 140, 62, 95, -95, 95)],  # an oval: left half, then right half
    7: [[(80, 62), (205, 60)], [(205, 60), (165, 148), (125, 235)]],  # the top bar, then the diagonal
}


def png_data_url(strokes, width=20):
    """The strokes drawn with PIL as the pad draws them: black, round, 20 px wide on white; a PNG data URL."""
    image = Image.new("RGB", (PAD, PAD), "white")
    draw = ImageDraw.Draw(image)
    for points in strokes:
        draw.line(points, fill="black", width=width, joint="curve")
        for x, y in points[:: len(points) - 1]:  # round ends
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_pad_reads_a_drawing_with_the_notebooks_functions(nb, model):
    """Without a browser: a drawing sent to the pad comes back preprocessed and read by forward."""
    pad = nb.DigitPad(model, nb.preprocess_image, nb.forward)
    for digit, strokes in DIGITS.items():
        pad.drawing = png_data_url(strokes)
        pad.stroke += 1  # what the browser does after every stroke
        reading = pad.reading
        assert reading["stroke"] == pad.stroke
        x = nb.preprocess_image(Image.open(io.BytesIO(base64.b64decode(pad.drawing.split(",")[1]))))
        P, cache = nb.forward(model, x[None, :])
        np.testing.assert_allclose(reading["input"], x.round(3))
        np.testing.assert_allclose(reading["probs"], P[0], rtol=1e-6)
        np.testing.assert_allclose(reading["hidden"], cache["A1"][0], rtol=1e-6)
        assert np.argmax(reading["probs"]) == digit
    pad.drawing, pad.stroke = "", pad.stroke + 1  # Clear
    assert pad.reading == {"stroke": pad.stroke}
    pad.drawing, pad.stroke = png_data_url([]), pad.stroke + 1  # a white page: no ink
    assert "no ink" in pad.reading["error"]


# --- the real browser ---------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_missing():
    """Why the browser test cannot run here, or "" when it can."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium` (Debian, Ubuntu)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -r requirements-dev.txt"
    return ""


def stop_server(process, url, token):
    """Shut the server down through its API, which also shuts down its kernels (they run in their own sessions)."""
    if process.poll() is None:
        try:
            request = urllib.request.Request(f"{url}/api/shutdown", method="POST")
            request.add_header("Authorization", f"token {token}")
            urllib.request.urlopen(request, timeout=10).close()
            process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 (free port, random token) serving a temp folder with pad.ipynb."""
    missing = browser_missing()
    if missing:
        # .ci/run installs both, so in CI (CI=true) a missing browser is a failure, not a reason to skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)(missing)
    folder = tmp_path_factory.mktemp("jupyter")
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from notebook_module import notebook_functions\n\n"
        f"nb = notebook_functions({str(NOTEBOOK)!r})\n"
        f"params = nb.load_model({str(ROOT / 'mnist_model.npz')!r})\n"
        "nb.DigitPad(params, nb.preprocess_image, nb.forward)"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "pad.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    home = folder / "home"  # the server's and the kernel's config, settings and runtime files stay in the temp folder
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # this Python's jupyter
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(home / "matplotlib"),
        PYTHONDONTWRITEBYTECODE="1",  # no __pycache__ in the repository's tests/
    )
    log = open(folder / "server.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}"]
        + ["--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}"]
        + ["--allow-root"],  # CI runs as root
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as response:
                    json.load(response)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_text = (folder / "server.log").read_text()[-3000:]
                    raise RuntimeError(f"JupyterLab did not start:\n{log_text}") from None
                time.sleep(0.5)
        yield url, token
    finally:
        stop_server(process, url, token)
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_pad(browser, server, path):
    """Open pad.ipynb at path (/lab/tree/... or /notebooks/...), run its cell with Shift+Enter, wait for the pad.

    A first load of JupyterLab on a busy machine can miss the keystroke (the page is still settling when it comes):
    then the page is reloaded and the cell run once more. If the pad still does not show, the failure says what the
    cell printed (e.g. a traceback) instead of only "timeout"."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url, token = server
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(f"{url}{path}?token={token}")
    for attempt in (1, 2):
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.locator(".digit-pad canvas.dp-pad").wait_for(state="visible", timeout=90_000)
            return page
        except PlaywrightTimeout:
            outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
            if attempt == 2 or outputs:
                page.close()
                shown = f"no drawing pad at {path} after running its cell; the cell shows: {outputs}"
                raise AssertionError(shown) from None
            page.reload()


def draw(page, strokes):
    """Draw strokes with the mouse on the pad, as a person would: press, move through the points, release."""
    box = page.locator(".digit-pad canvas.dp-pad").bounding_box()
    sx, sy = box["width"] / PAD, box["height"] / PAD
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0] * sx, box["y"] + points[0][1] * sy)
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=6)
        page.mouse.up()
        page.wait_for_timeout(150)  # a short pause between strokes


def reading(page):
    """Wait until the page shows the network's answer to the last stroke; return (digit shown, probabilities)."""
    page.locator('.digit-pad[data-state="ready"]').wait_for()
    digit = page.locator(".digit-pad .dp-guess").get_attribute("data-digit")
    probs = [float(p) for p in page.locator(".digit-pad .dp-bar").evaluate_all("bars => bars.map(b => b.dataset.p)")]
    return (int(digit) if digit else None), np.array(probs)


def clear(page):
    page.get_by_role("button", name="Clear").click()
    assert reading(page)[0] is None


def test_draw_digits_in_jupyterlab(browser, server):
    """JupyterLab: draw a 1, a 0 and a 7; each must be read right. Saves the screenshot with the 7."""
    page = open_pad(browser, server, "/lab/tree/pad.ipynb")
    try:
        for digit, strokes in DIGITS.items():
            draw(page, strokes)
            shown, probs = reading(page)
            print(f"drew a {digit}: the page says {shown}, probabilities {np.round(probs, 3)}")
            assert shown == digit, f"drew a {digit}, the page says {shown} (probabilities {np.round(probs, 3)})"
            assert probs.argmax() == digit and abs(probs.sum() - 1) < 1e-3
            if digit != 7:
                clear(page)
        page.locator(".digit-pad").screenshot(path=SCREENSHOT)  # the pad with the 7, and what the network makes of it
    finally:
        page.close()


def test_draw_a_digit_in_notebook_7(browser, server):
    """Jupyter Notebook 7 (the /notebooks page): the same pad reads a drawn 7."""
    page = open_pad(browser, server, "/notebooks/pad.ipynb")
    try:
        draw(page, DIGITS[7])
        shown, probs = reading(page)
        print(f"Notebook 7: drew a 7, the page says {shown}, probabilities {np.round(probs, 3)}")
        assert shown == 7
    finally:
        page.close()

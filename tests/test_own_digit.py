"""Section 14 (try your own digit): preprocess_image and each of its steps, on synthetic pages and on
MNIST test digits turned into "photos", read by the committed model."""

import numpy as np
import pytest
from PIL import Image

from notebook_module import ROOT

EXAMPLE = ROOT / "images" / "my_digit.png"
EXAMPLE_LABEL = 2  # the digit drawn in images/my_digit.png


def page_with_bar(shape=(60, 50), paper=0.9, ink=0.1, rows=slice(10, 30), cols=slice(20, 26)):
    """A greyscale page (1 = white) with one dark rectangle of ink."""
    page = np.full(shape, paper, dtype=np.float32)
    page[rows, cols] = ink
    return page


def test_mnist_pages_are_read_right(nb, model, mnist_small, tmp_path):
    """MNIST test digits, enlarged, dark ink on white, off-centre on a larger page, saved as PNG."""
    X_test, y_test = mnist_small[2], mnist_small[3]
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y_test), size=200, replace=False)
    inputs = []
    for n, i in enumerate(idx):
        scale = int(rng.integers(3, 9))  # 84 to 224 pixels
        side = 28 * scale
        digit = Image.fromarray(255 - np.round(255 * X_test[i]).astype(np.uint8).reshape(28, 28))
        digit = digit.resize((side, side), Image.BILINEAR)
        width, height = side + int(rng.integers(20, 200)), side + int(rng.integers(20, 200))
        page = Image.new("L", (width, height), 255)
        page.paste(digit, (int(rng.integers(0, width - side)), int(rng.integers(0, height - side))))
        path = tmp_path / f"page_{n}.png"
        page.save(path)
        inputs.append(nb.preprocess_image(path))
    X_pages = np.stack(inputs)
    read_right = nb.accuracy(nb.predict(model, X_pages), y_test[idx])
    original = nb.accuracy(nb.predict(model, X_test[idx]), y_test[idx])
    assert read_right >= 0.90, f"only {read_right:.1%} of the pages read right (the original digits: {original:.1%})"


def test_preprocess_image_output(nb, tmp_path):
    x = nb.preprocess_image(page_with_bar())
    assert x.shape == (784,) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() == pytest.approx(1.0)
    ink = x.reshape(28, 28) > 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side fills the 20 x 20 box
    assert cols[-1] - cols[0] + 1 == 6  # 20 x 6 ink keeps its aspect ratio: 20 x 6 pixels


def test_path_pil_and_arrays_give_the_same_result(nb, tmp_path):
    page = page_with_bar()
    u8 = np.round(255 * page).astype(np.uint8)
    Image.fromarray(u8).save(tmp_path / "page.png")
    rgb = np.repeat(u8[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full(u8.shape + (1,), 255, np.uint8)], axis=2)
    reference = nb.preprocess_image(page)
    as_file, as_pil = [tmp_path / "page.png", str(tmp_path / "page.png")], [Image.fromarray(u8), Image.fromarray(rgb)]
    for image in as_file + as_pil + [u8, rgb, rgba, page.astype(np.float64)]:
        np.testing.assert_allclose(nb.preprocess_image(image), reference, atol=0.02)
    np.testing.assert_array_equal(u8, np.round(255 * page).astype(np.uint8))  # the input is not changed


def test_load_grayscale(nb):
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)  # black but fully transparent: white paper
    np.testing.assert_allclose(nb.load_grayscale(rgba), 1.0)
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    np.testing.assert_allclose(nb.load_grayscale(rgb), 0.299, atol=1e-6)
    grey = nb.load_grayscale(np.full((3, 3), 51, dtype=np.uint8))
    assert grey.dtype == np.float32 and grey.shape == (3, 3)
    np.testing.assert_allclose(grey, 0.2)


def test_inversion_dark_ink_on_light_paper(nb):
    page = page_with_bar(paper=0.85, ink=0.15)
    ink = nb.to_ink(page)
    assert ink[20, 22] == pytest.approx(1.0)  # the ink becomes 1 (MNIST: ink is bright)
    assert ink[0, 0] == 0 and ink[50, 40] == 0  # the grey paper becomes 0
    assert ink.sum() == pytest.approx(20 * 6)


def test_no_inversion_for_light_ink_on_dark_background(nb):
    page = page_with_bar(paper=0.05, ink=0.95)  # already like MNIST
    ink = nb.to_ink(page)
    assert ink[20, 22] == pytest.approx(1.0) and ink[0, 0] == 0
    assert ink.sum() == pytest.approx(20 * 6)


def test_inversion_also_on_dim_paper(nb):
    page = page_with_bar(paper=0.45, ink=0.05)  # a dark photo: paper below mid-grey, ink still darker
    ink = nb.to_ink(page)
    assert ink[20, 22] == pytest.approx(1.0) and ink[0, 0] == 0


def test_uneven_noisy_paper_becomes_zero(nb):
    rng = np.random.default_rng(0)
    page = page_with_bar(paper=0.9, ink=0.2)
    page += np.linspace(-0.05, 0.05, page.shape[1]) + rng.normal(0, 0.02, page.shape)  # lamp light, sensor noise
    ink = nb.to_ink(np.clip(page, 0, 1))
    assert ink[:10].max() == 0 and ink[35:].max() == 0  # all paper, however uneven, is 0
    assert nb.crop_to_ink(ink).shape == (20, 6)  # so the crop finds the ink alone


def test_crop_to_ink(nb):
    ink = np.zeros((40, 30), dtype=np.float32)
    ink[5:10, 3:13] = 0.5
    ink[12, 7] = 1.0
    cropped = nb.crop_to_ink(ink)
    assert cropped.shape == (8, 10)  # rows 5-12, columns 3-12
    np.testing.assert_array_equal(cropped, ink[5:13, 3:13])


def test_fit_in_box_keeps_the_aspect_ratio(nb):
    tall = nb.fit_in_box(np.ones((100, 40), dtype=np.float32))
    wide = nb.fit_in_box(np.ones((30, 90), dtype=np.float32))
    small = nb.fit_in_box(np.ones((5, 10), dtype=np.float32))  # small images are enlarged
    assert tall.shape == (20, 8) and wide.shape == (7, 20) and small.shape == (10, 20)
    assert tall.max() == pytest.approx(1.0) and tall.min() >= 0


def test_centre_by_mass_puts_the_centre_of_mass_at_14_14(nb):
    digit = np.zeros((20, 12), dtype=np.float32)
    digit[2:6, 1:11] = 1.0  # heavy top bar
    digit[6:20, 8:10] = 0.5  # lighter stem on the right
    frame = nb.centre_by_mass(digit)
    assert frame.shape == (28, 28) and frame.dtype == np.float32
    assert frame.sum() == pytest.approx(digit.sum())  # nothing is cut off
    com = nb.centre_of_mass(frame)
    assert np.all(np.abs(com - 14) <= 0.5)
    single = np.zeros((3, 3), dtype=np.float32)
    single[0, 2] = 1.0
    assert nb.centre_by_mass(single)[14, 14] == 1.0  # one pixel lands exactly on the centre


def test_centre_of_mass_matches_mnist(nb, mnist_small):
    """MNIST's digits themselves have their centre of mass at (14, 14): the target we centre on."""
    com = nb.centre_of_mass(mnist_small[2].reshape(-1, 28, 28))
    assert com.shape == (5000, 2)
    np.testing.assert_allclose(com.mean(axis=0), [14, 14], atol=0.1)


def test_blank_images_raise_no_ink_found(nb):
    for blank in [np.ones((50, 40)), np.full((50, 40), 0.7), np.zeros((50, 40), dtype=np.uint8)]:
        with pytest.raises(ValueError, match="no ink found"):
            nb.preprocess_image(blank)
    with pytest.raises(ValueError, match="no ink found"):
        nb.crop_to_ink(np.zeros((5, 5)))


def test_bad_files_and_arrays_give_clear_errors(nb, tmp_path):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"this is not a PNG file")
    with pytest.raises(ValueError, match="not_an_image.png") as e:
        nb.preprocess_image(bad)
    assert "cannot be read as an image" in str(e.value)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        nb.preprocess_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="shape"):
        nb.preprocess_image(np.zeros(784))  # a flat MNIST row must be reshaped to (28, 28) first
    with pytest.raises(ValueError, match="0-1"):
        nb.preprocess_image(np.full((10, 10), 3.0))


def test_the_example_image_is_a_photo_like_page_read_right(nb, model):
    with Image.open(EXAMPLE) as image:
        width, height = image.size
    assert 150 <= width <= 400 and 150 <= height <= 400, "a small photo-like page"
    x = nb.preprocess_image(EXAMPLE)
    P, _ = nb.forward(model, x[None, :])
    assert P[0].argmax() == EXAMPLE_LABEL, f"read as {P[0].argmax()} (probabilities {np.round(P[0], 3)})"
    assert P[0, EXAMPLE_LABEL] > 0.9


def test_my_digit_figure_draws_the_steps_to_scale_and_the_probabilities_on_a_log_scale(nb):
    """Section 14's figure: the photo, ink and crop share the photo's scale (the crop looks as small as it is),
    the box and the final image share the 28 x 28 scale, and the probabilities use section 12's log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    page = page_with_bar(shape=(120, 90), rows=slice(20, 80), cols=slice(30, 42))
    steps = nb.preprocessing_steps(page)
    probs = np.array([1e-12, 0.002, 0.99, 0.008 - 1e-12, 0, 0, 0, 0, 0, 0])
    fig = nb.plot_my_digit(steps, probs)
    axes = fig.axes
    for ax, name in zip(axes, ["photo", "ink", "cropped"]):
        assert ax.get_xlim() == pytest.approx((-0.5, 90 - 0.5)) and ax.get_ylim() == pytest.approx((120 - 0.5, -0.5))
        left, right, bottom, top = ax.images[0].get_extent()
        assert (right - left, bottom - top) == steps[name].shape[::-1]  # one unit per pixel
    assert steps["cropped"].shape[0] < 120 and axes[2].images[0].get_extent()[0] > 0  # smaller, drawn smaller
    for ax, name in zip(axes[3:5], ["boxed", "frame"]):
        assert ax.get_xlim() == pytest.approx((-0.5, 27.5))
        left, right, bottom, top = ax.images[0].get_extent()
        assert (right - left, bottom - top) == steps[name].shape[::-1]
    bars = axes[5]
    assert bars.get_yscale() == "log"
    assert [t.get_text() for t in bars.texts] == [f"{p:.0e}" for p in probs]
    assert len(bars.collections[0].get_offsets()) == np.sum(probs < 1e-8)  # below the axis: a triangle
    assert "says 2" in bars.get_title()
    plt.close(fig)

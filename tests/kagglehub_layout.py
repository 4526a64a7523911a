"""kagglehub's cache layout, for the tests that serve MNIST offline through the real kagglehub."""

from pathlib import Path

HANDLE = "oddrationale/mnist-in-csv/versions/2"  # the notebook's KAGGLE_DATASET


def cached_dataset_folder(cache, handle=HANDLE):
    """Make the folder kagglehub serves the versioned `owner/name/versions/N` from, with its `N.complete` marker.

    Returns the folder: put the dataset's files into it. kagglehub then answers `dataset_download(handle)` from
    `cache` (KAGGLEHUB_CACHE) without the network.
    """
    owner, name, versions, number = handle.split("/")
    assert versions == "versions", f"{handle!r} should name a version (offline use needs one)"
    folder = Path(cache) / "datasets" / owner / name / "versions" / number
    folder.mkdir(parents=True)
    (Path(cache) / "datasets" / owner / name / f"{number}.complete").touch()
    return folder

"""Counting-set readers on fixtures in each real on-disk format (written here), the Datasets, and real nuclei.

Formats: VGG cells PNG pairs (red dot pixels), BBBC005 TIFF names with the count, bone marrow PNG pairs (grey
dots), adipocyte JPEG pairs (dots smeared by compression). The oracle on real data: stardist's 125 labelled nuclei
-> centroids -> a density map that sums to 125, every dot inside its own nucleus.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from skimage.measure import regionprops
from torch.utils.data import DataLoader

from course_lib.counting.datasets import (
    CountRecord,
    dots_from_annotation_image,
    dots_from_instance_labels,
    parse_bbbc005_name,
    read_adipocyte,
    read_bbbc005,
    read_bone_marrow,
    read_vgg_cells,
    vgg_cells_split,
)
from course_lib.counting.training_data import DensityDataset
from course_lib.data.sample_images import fluorescence_nuclei, package_file

# --- fixture writers, one per on-disk format -------------------------------------------------------------------

VGG_DOTS = {1: [(2, 3), (10, 20), (31, 31)], 2: [], 3: [(0, 0), (5, 5), (5, 6), (20, 9), (30, 1)]}  # number -> dots


def write_vgg(root: Path, dots_by_number=VGG_DOTS, side: int = 32) -> Path:
    """``NNNcell.png`` (cells in blue) + ``NNNdots.png`` (one (255, 0, 0) pixel per cell on black)."""
    root.mkdir(parents=True, exist_ok=True)
    for number, dots in dots_by_number.items():
        cell = np.zeros((side, side, 3), np.uint8)
        cell[..., 2] = 40 + number  # a distinct blue level per image
        marks = np.zeros((side, side, 3), np.uint8)
        for r, c in dots:
            cell[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2, 2] = 220
            marks[r, c] = (255, 0, 0)
        Image.fromarray(cell).save(root / f"{number:03d}cell.png")
        Image.fromarray(marks).save(root / f"{number:03d}dots.png")
    return root


BBBC_NAMES = ["SIMCEPImages_A05_C18_F1_s05_w1.TIF", "SIMCEPImages_A05_C18_F1_s05_w2.TIF",
              "SIMCEPImages_B05_C18_F4_s05_w2.TIF", "SIMCEPImages_P24_C100_F48_s25_w2.TIF"]


def write_bbbc005(root: Path, names=BBBC_NAMES) -> Path:
    """8-bit TIFFs named like the collection's; a foreground mask for each F1 image in ground_truth/."""
    (root / "images").mkdir(parents=True)
    (root / "ground_truth").mkdir()
    for i, name in enumerate(names):
        tifffile.imwrite(root / "images" / name, np.full((20, 24), 10 * i + 5, np.uint8))
        if "_F1_" in name:
            tifffile.imwrite(root / "ground_truth" / name, np.zeros((20, 24), np.uint8))
    return root


MBM_DOTS = {("0001_01", 0): [(1, 1), (7, 8)], ("0001_01", 1): [(4, 4)], ("0020_01", 3): [(0, 9), (9, 0), (5, 5)]}


def write_bone_marrow(root: Path, dots_by_key=MBM_DOTS, side: int = 10) -> Path:
    """``BM_GRAZ_HE_<source>_<crop>.png`` (RGB) + ``..._dots_<crop>.png`` (grey, 255 per cell)."""
    root.mkdir(parents=True, exist_ok=True)
    for (source, crop), dots in dots_by_key.items():
        marks = np.zeros((side, side), np.uint8)
        for r, c in dots:
            marks[r, c] = 255
        Image.fromarray(np.full((side, side, 3), (200, 120, 180), np.uint8)).save(
            root / f"BM_GRAZ_HE_{source}_{crop:03d}.png")
        Image.fromarray(marks).save(root / f"BM_GRAZ_HE_{source}_dots_{crop:03d}.png")
    return root


def blob_annotation(centres, side: int = 48, colour=(255, 0, 0), quality: int = 75) -> bytes:
    """A JPEG dots image: a 3 x 3 blob of ``colour`` per centre on black, compressed like the adipocyte files."""
    marks = np.zeros((side, side, 3), np.uint8)
    for r, c in centres:
        marks[r - 1:r + 2, c - 1:c + 2] = colour
    buffer = io.BytesIO()
    Image.fromarray(marks).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


ADIPO = {"10200-13600_GTEX-Y5V5_Adipose-Subcutaneous": [(8, 8), (8, 30), (30, 20), (40, 40)],
         "0-11900_GTEX-13QJC_Adipose-Subcutaneous": [(20, 20)],
         "extra_tile": [(5, 5), (5, 40)]}


def write_adipocyte(root: Path, dots_by_stem=ADIPO) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for stem, centres in dots_by_stem.items():
        Image.fromarray(np.full((48, 48, 3), 230, np.uint8)).save(root / "images" / f"{stem}.jpeg", quality=90)
        (root / "annotations" / f"{stem}.jpeg").write_bytes(blob_annotation(centres))
    return root


# --- dots from annotation images and from instance labels -------------------------------------------------------

def _rgb(shape=(6, 7)):
    return np.zeros(shape + (3,), np.uint8)


@pytest.mark.parametrize("make, expected", [
    # (6, 7, 3) red pixels, VGG style: every marked pixel is one dot, in row-major order
    (lambda: _set(_rgb(), [(3, 2), (0, 6)], (255, 0, 0)), [[0, 6], [3, 2]]),
    # near-red (lossy colour) and white both count: channel 0 is read; pure green does not
    (lambda: _set(_set(_rgb(), [(1, 1)], (240, 20, 10)), [(2, 2)], (255, 255, 255)), [[1, 1], [2, 2]]),
    (lambda: _set(_rgb(), [(4, 4)], (0, 255, 0)), []),
    # (6, 7) grey, bone-marrow style
    (lambda: _set(np.zeros((6, 7), np.uint8), [(5, 0), (0, 3)], 255), [[0, 3], [5, 0]]),
    # (6, 7, 4) RGBA: alpha ignored
    (lambda: _set(np.zeros((6, 7, 4), np.uint8), [(2, 5)], (255, 0, 0, 255)), [[2, 5]]),
])
def test_dots_from_annotation_image(make, expected):
    dots = dots_from_annotation_image(make())
    assert dots.dtype == np.float64 and dots.shape == (len(expected), 2)
    assert dots.tolist() == [[float(v) for v in row] for row in expected]


def _set(array, pixels, value):
    for r, c in pixels:
        array[r, c] = value
    return array


@pytest.mark.parametrize("colour", [(255, 0, 0), (255, 255, 255)])
def test_jpeg_blobs_give_one_dot_each_near_the_centre(colour):
    centres = [(5, 5), (5, 20), (24, 12), (40, 40), (30, 44)]
    decoded = np.asarray(Image.open(io.BytesIO(blob_annotation(centres, colour=colour))))
    pixelwise = dots_from_annotation_image(decoded)
    assert len(pixelwise) >= 9 * len(centres)  # each 3 x 3 blob is 9+ marked pixels: per-pixel counting overcounts
    dots = dots_from_annotation_image(decoded, connected=True)
    assert len(dots) == len(centres)
    order = np.lexsort((dots[:, 1], dots[:, 0]))  # blobs come in label order; compare sorted by (row, col)
    np.testing.assert_allclose(dots[order], sorted(centres), atol=0.5)


def test_annotation_image_errors():
    with pytest.raises(TypeError, match="`annotation` must be uint8"):
        dots_from_annotation_image(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"`annotation` must be \(H, W\) or \(H, W, 2\|3\|4\), got shape \(4, 4, 5\)"):
        dots_from_annotation_image(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="`threshold` must be in 1..255, got 0"):
        dots_from_annotation_image(np.zeros((4, 4), np.uint8), threshold=0)


def test_instance_centroids_match_regionprops_and_stay_on_their_object():
    labels = np.zeros((12, 12), np.int32)
    labels[0:3, 0:4] = 3  # rectangle: centroid (1, 1.5)
    labels[6:11, 6:9] = 9  # rectangle: centroid (8, 7)
    # a "C" (id 5): rows 4..8 of column 0, plus rows 4 and 8 out to column 3; centroid (6, ~1.1) is in the hole
    labels[4:9, 0] = 5
    labels[4, 0:4] = 5
    labels[8, 0:4] = 5
    dots = dots_from_instance_labels(labels)
    props = {p.label: p.centroid for p in regionprops(labels)}  # oracle: scikit-image
    np.testing.assert_allclose(dots[[0, 2]], [props[3], props[9]])
    assert labels[6, 1] == 0  # the C's centroid, rounded, is background ...
    r, c = dots[1].astype(int)
    assert labels[r, c] == 5 and (r, c) == (6, 0)  # ... so its dot moves to the nearest pixel of the C
    assert dots_from_instance_labels(np.zeros((3, 3), int)).shape == (0, 2)


def test_instance_label_errors():
    with pytest.raises(ValueError, match="integer label map"):
        dots_from_instance_labels(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="must be >= 0"):
        dots_from_instance_labels(np.array([[0, -1]]))


def test_real_nuclei_centroids_make_a_density_that_counts_125(one_thread):
    image, labels = fluorescence_nuclei()
    ids = np.unique(labels)[1:]
    assert image.shape == (512, 512) and len(ids) == 125
    dots = dots_from_instance_labels(labels)
    rows, cols = np.floor(dots + 0.5).astype(int).T
    assert (labels[rows, cols] == ids).all()  # every dot inside its own nucleus (dots come in label order)
    record = CountRecord("stardist", "img2d", package_file("stardist", "data", "images", "img2d.tif"), 125, dots)
    img, density = from_records([record], sigma=3.0)[0]
    assert img.shape == (1, 512, 512) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
    assert density.shape == (1, 512, 512) and abs(float(density.sum()) - 125) < 1e-3
    _, small = from_records([record], sigma=1.5, size=128)[0]  # 4x smaller: dots scaled, still 125 cells
    assert small.shape == (1, 128, 128) and abs(float(small.sum()) - 125) < 1e-3


# --- file names and readers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("SIMCEPImages_A05_C18_F1_s05_w1.TIF", {"well": "A05", "count": 18, "focus": 1, "site": 5, "stain": 1}),
    ("SIMCEPImages_P24_C100_F48_s25_w2.TIF", {"well": "P24", "count": 100, "focus": 48, "site": 25, "stain": 2}),
    ("SIMCEPImages_B03_C1_F16_s01_w2.tif", {"well": "B03", "count": 1, "focus": 16, "site": 1, "stain": 2}),
])
def test_parse_bbbc005_name(name, expected):
    assert parse_bbbc005_name(name) == expected


@pytest.mark.parametrize("name", ["SIMCEPImages_A05_F1_s05_w1.TIF", "SIMCEPImages_Q05_C18_F1_s05_w1.TIF",
                                  "SIMCEPImages_A05_C18_F1_s05_w3.TIF", "SIMCEPImages_A05_C18_F1_s05_w1.png",
                                  "A05_C18_F1_s05_w1.TIF"])
def test_malformed_bbbc005_names_are_named(name):
    with pytest.raises(ValueError, match=f"{name!r} is not a BBBC005 image name"):
        parse_bbbc005_name(name)


def test_read_vgg_cells(tmp_path):
    root = write_vgg(tmp_path / "vgg")
    (root / "readme.txt").write_text("not an image")  # other files are ignored
    records = read_vgg_cells(root)
    assert [r.name for r in records] == ["001", "002", "003"] and [r.meta["number"] for r in records] == [1, 2, 3]
    assert [r.count for r in records] == [3, 0, 5]
    assert records[2].dots.tolist() == [[0, 0], [5, 5], [5, 6], [20, 9], [30, 1]]  # adjacent dots stay two cells
    assert records[0].image.name == "001cell.png" and records[0].annotation.name == "001dots.png"
    assert records == read_vgg_cells(root) and len(set(records)) == 3  # records compare and hash despite their arrays
    (root / "003dots.png").unlink()
    with pytest.raises(ValueError, match=r"1 VGG cells file\(s\) in .* without their partner, e.g. \['003cell.png'\]"):
        read_vgg_cells(root)
    (root / "003cell.png").unlink()
    (root / "002dots.png").write_bytes((root / "002dots.png").read_bytes()[:60])  # truncated download
    with pytest.raises(ValueError, match=r"002dots\.png is corrupt or not an image"):
        read_vgg_cells(root)
    with pytest.raises(FileNotFoundError, match="data_scripts/vgg_cells.py"):
        read_vgg_cells(tmp_path / "nowhere")


def test_read_bbbc005(tmp_path):
    root = write_bbbc005(tmp_path / "bbbc005")
    nuclei = read_bbbc005(root)  # default: stain 2 (nuclei)
    assert [(r.count, r.meta["well"], r.meta["focus"], r.meta["stain"]) for r in nuclei] == [
        (18, "A05", 1, 2), (18, "B05", 4, 2), (100, "P24", 48, 2)]
    assert all(r.dots is None for r in nuclei)
    assert nuclei[0].meta["mask"] == root / "ground_truth" / BBBC_NAMES[1] and nuclei[1].meta["mask"] is None
    assert len(read_bbbc005(root, stain=None)) == 4 and len(read_bbbc005(root, stain=1)) == 1
    assert [r.meta["well"] for r in read_bbbc005(root, focus=[1, 4])] == ["A05", "B05"]
    with pytest.raises(ValueError, match="`stain` must be 1"):
        read_bbbc005(root, stain=3)
    with pytest.raises(ValueError, match="no BBBC005 images for stain=2, focus=\\[7\\]"):
        read_bbbc005(root, focus=[7])
    tifffile.imwrite(root / "images" / "SIMCEPImages_A05_C18_F1_w2.TIF", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="'SIMCEPImages_A05_C18_F1_w2.TIF' is not a BBBC005 image name"):
        read_bbbc005(root)


def test_read_bone_marrow(tmp_path):
    records = read_bone_marrow(write_bone_marrow(tmp_path / "mbm"))
    assert [(r.meta["source"], r.meta["crop"], r.count) for r in records] == [
        ("0001_01", 0, 2), ("0001_01", 1, 1), ("0020_01", 3, 3)]
    assert records[0].name == "BM_GRAZ_HE_0001_01_000" and records[0].dots.tolist() == [[1, 1], [7, 8]]


def test_read_adipocyte_counts_jpeg_blobs(tmp_path):
    records = {r.name: r for r in read_adipocyte(write_adipocyte(tmp_path / "adipocyte"))}
    assert {name: r.count for name, r in records.items()} == {name: len(c) for name, c in ADIPO.items()}
    assert records["10200-13600_GTEX-Y5V5_Adipose-Subcutaneous"].meta == {"tile": "10200-13600", "donor": "GTEX-Y5V5"}
    assert records["extra_tile"].meta == {}  # a name not in the published form: no metadata, still read


# --- the VGG protocol -------------------------------------------------------------------------------------------

def _vgg_records(numbers=range(1, 201)):
    return [CountRecord("vgg_cells", f"{n:03d}", Path(f"{n:03d}cell.png"), 0, meta={"number": n}) for n in numbers]


def test_vgg_split_follows_the_protocol():
    records = _vgg_records()
    split = vgg_cells_split(records, n_train=32, seed=3)
    numbers = {k: [r.meta["number"] for r in v] for k, v in split.items()}
    assert [len(numbers[k]) for k in ("train", "val", "test")] == [32, 32, 100]
    assert numbers["test"] == list(range(101, 201))  # fixed test set
    assert max(numbers["train"] + numbers["val"]) <= 100 and not set(numbers["train"]) & set(numbers["val"])
    assert vgg_cells_split(records, n_train=32, seed=3) == split  # same seed, same split
    assert vgg_cells_split(records, n_train=32, seed=4)["train"] != split["train"]
    assert [len(v) for v in vgg_cells_split(records, n_train=64, n_val=36).values()] == [64, 36, 100]


def test_vgg_split_errors():
    with pytest.raises(ValueError, match=r"`n_train` \(64\) \+ `n_val` \(64\) must be between 1 and the 100"):
        vgg_cells_split(_vgg_records(), n_train=64)
    with pytest.raises(ValueError, match="must come from read_vgg_cells"):
        vgg_cells_split([CountRecord("bbbc005", "x", Path("x.TIF"), 3)])


# --- Datasets and batching --------------------------------------------------------------------------------------

def from_records(records, sigma=1.5, target_scale=1.0, **kwargs):
    return DensityDataset.from_records(records, sigma=sigma, target_scale=target_scale, **kwargs)


def test_dataset_of_records_items_and_batches(tmp_path, one_thread):
    records = read_vgg_cells(write_vgg(tmp_path / "vgg"))
    data = from_records(records)
    image, density = data[2]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert float(image[2].max()) == pytest.approx(220 / 255) and float(image[:2].max()) == 0  # cells are blue
    assert density.shape == (1, 32, 32) and density.dtype == torch.float32 and data.counts[2] == 5
    assert abs(float(density.sum()) - 5) < 1e-4  # border dots (0, 0), (30, 1) count fully
    assert tuple(np.unravel_index(int(density[0, 15:26].argmax()), (11, 32))) == (5, 9)  # peak on the dot (20, 9)
    blue, _ = from_records(records, channels=[2])[0]
    assert blue.shape == (1, 32, 32) and torch.equal(blue[0], data[0][0][2])
    _, scaled = DensityDataset.from_records(records, sigma=1.5)[0]  # default target_scale 100, as for arrays
    assert abs(float(scaled.sum()) - 300) < 1e-2
    batches = list(DataLoader(from_records(records, sigma=1.0, size=16), batch_size=2))
    images, densities = batches[0]
    assert images.shape == (2, 3, 16, 16) and densities.shape == (2, 1, 16, 16)
    torch.testing.assert_close(densities.sum(dim=(1, 2, 3)), torch.tensor([3.0, 0.0]), atol=1e-4, rtol=0)
    assert batches[1][0].shape == (1, 3, 16, 16) and float(batches[1][1].sum()) == pytest.approx(5, abs=1e-4)
    _, counts = next(iter(DataLoader(from_records(records, target="count"), batch_size=3)))
    assert counts.tolist() == [[3.0], [0.0], [5.0]], "target='count': (K,) counts per image, unscaled"
    cc = from_records(records, target="countception", window=4, crop=16)
    torch.manual_seed(0)
    _, windows = cc[2]
    assert windows.shape == (1, 19, 19) and float(windows.sum()) % 16 == 0, "each cell counted window^2 times"


def test_resizing_moves_dots_with_the_pixels(tmp_path):
    records = read_vgg_cells(write_vgg(tmp_path / "vgg", {1: [(10, 20)]}, side=32))
    _, density = from_records(records, sigma=1.0, size=(16, 64))[0]
    # pixel centres map as (p + 0.5) * scale - 0.5: row 10 -> 4.75, col 20 -> 81.5 / ... = 40.5 (between 40 and 41)
    rows, cols = density[0].sum(1), density[0].sum(0)
    assert float((rows * torch.arange(16)).sum()) == pytest.approx(4.75, abs=1e-3)
    assert float((cols * torch.arange(64)).sum()) == pytest.approx(40.5, abs=1e-3)


def test_count_regression_for_bbbc005(tmp_path):
    records = read_bbbc005(write_bbbc005(tmp_path / "bbbc005"), stain=None)
    with pytest.raises(ValueError, match=r"4 record\(s\) have a count but no dots .* use target='count'"):
        from_records(records, sigma=2.0)
    images, counts = next(iter(DataLoader(from_records(records, target="count", size=(10, 12)), batch_size=4)))
    assert images.shape == (4, 1, 10, 12) and counts[:, 0].tolist() == [18.0, 18.0, 18.0, 100.0]
    image, _ = from_records(records, target="count")[1]
    assert image.shape == (1, 20, 24) and float(image.max()) == pytest.approx(15 / 255)
    with pytest.raises(ValueError, match="without `crop`"):
        from_records(records, target="count", crop=8)[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"sigma": 0.0}, "`sigma` must be a positive number"),
    ({"sigma": 1.0, "size": (8, 0)}, "`size` must be an int or"),
    ({"sigma": 1.0, "target_scale": -1.0}, "`target_scale` must be > 0"),
    ({"sigma": 1.0, "target": "boxes"}, "`target` must be one of"),
])
def test_dataset_argument_errors(tmp_path, kwargs, message):
    records = read_vgg_cells(write_vgg(tmp_path / "vgg"))
    with pytest.raises(ValueError, match=message):
        DensityDataset.from_records(records, **kwargs)
    with pytest.raises(ValueError, match="`records` is empty"):
        DensityDataset.from_records([])

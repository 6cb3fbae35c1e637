"""course_lib.chest_xray.images on the real MONOCHROME1 chest DICOM (oracle: pydicom's own LUT functions) and on
DICOM, PNG8, PNG16 and JPEG files written here (oracles: the arrays written, Pillow, scikit-image)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage
from skimage import io as skio
from skimage.transform import resize as sk_resize

from course_lib.chest_xray.images import apply_window, load_radiograph, read_dicom, resize
from course_lib.data.sample_images import chest_radiograph_dicom


def write_dicom(path, pixels, photometric="MONOCHROME2", bits_stored=12, signed=False, **attrs):
    """A minimal uncompressed single-frame CR DICOM file, 16 bits allocated."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "CR"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, int(signed)
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# --- the real radiograph ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real():
    ds = pydicom.dcmread(chest_radiograph_dicom())
    return ds, read_dicom(chest_radiograph_dicom())


def test_real_dicom_matches_pydicom_lut_pipeline_then_inversion(real):
    ds, image = real
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.BitsStored == 15
    assert image.shape == (1955, 1841) and image.dtype == np.float32
    # oracle: pydicom's modality LUT + VOI window (output range 0 .. 2**15 - 1), scaled to [0, 1], then inverted
    windowed = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    expected = 1.0 - windowed / (2**15 - 1)
    assert np.abs(image - expected).max() < 1e-5


def test_real_dicom_is_inverted_so_the_mediastinum_is_brighter_than_the_lungs(real):
    ds, image = real
    h, w = image.shape
    rows = slice(h // 2 - 100, h // 2 + 100)  # mid-height band: heart/spine in the centre, lungs either side
    centre = image[rows, w // 2 - 40:w // 2 + 40].mean()
    left_lung = image[rows, w // 4 - 40:w // 4 + 40].mean()
    right_lung = image[rows, 3 * w // 4 - 40:3 * w // 4 + 40].mean()
    assert centre > left_lung + 0.15 and centre > right_lung + 0.15, (centre, left_lung, right_lung)
    stored = ds.pixel_array.astype(float)  # MONOCHROME1 as stored: the lungs are the *bright* part
    assert stored[rows, w // 2 - 40:w // 2 + 40].mean() < stored[rows, w // 4 - 40:w // 4 + 40].mean()
    assert image[:40, :150].mean() < left_lung - 0.2  # the top-left corner, outside the body, is air: darkest


def test_real_dicom_windows(real):
    ds, auto = real
    stored = ds.pixel_array.astype(np.float64)
    full_range = read_dicom(chest_radiograph_dicom(), window="range")
    # the 15-bit stored range, not the image's own extremes: 1 - x / 32767 (its maximum 26512 -> 0.19, not 0)
    assert np.allclose(full_range, 1 - stored / (2**15 - 1), atol=1e-6)
    assert full_range.min() == pytest.approx(1 - stored.max() / 32767, abs=1e-6) and full_range.min() > 0.15
    # the header window (centre 15000, width 30000): y = (x - 14999.5) / 29999 + 0.5, inverted
    assert np.allclose(auto, 1 - np.clip((stored - 14999.5) / 29999 + 0.5, 0, 1), atol=1e-6)
    stretched = read_dicom(chest_radiograph_dicom(), window="minmax")
    assert stretched.min() == 0.0 and stretched.max() == 1.0
    narrow = read_dicom(chest_radiograph_dicom(), window=(7500, 10000))  # narrower, on the chest: more contrast
    assert np.allclose(narrow, 1 - np.clip((stored - 7499.5) / 9999 + 0.5, 0, 1), atol=1e-6)
    h, w = auto.shape
    rows = slice(h // 2 - 100, h // 2 + 100)

    def contrast(image):  # mediastinum minus left lung
        return image[rows, w // 2 - 40:w // 2 + 40].mean() - image[rows, w // 4 - 40:w // 4 + 40].mean()

    assert contrast(narrow) > 2 * contrast(auto) > 0


def test_real_dicom_resized_keeps_the_picture(real):
    _, image = real
    small = load_radiograph(chest_radiograph_dicom(), size=224)
    assert small.shape == (224, 224) and small.dtype == np.float32 and 0 <= small.min() and small.max() <= 1
    oracle = sk_resize(image, (224, 224), anti_aliasing=True, order=1)  # different filter, same picture
    assert np.abs(small - oracle).mean() < 0.01


# --- windows and DICOM variants written here ------------------------------------------------------------------------

@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_functions_match_pydicom(tmp_path, function):
    pixels = (np.arange(64).reshape(8, 8) * 60).astype(np.uint16)  # 0 .. 3780 in a 12-bit range
    path = write_dicom(tmp_path / "w.dcm", pixels, WindowCenter=1800, WindowWidth=1500, VOILUTFunction=function)
    ds = pydicom.dcmread(path)
    expected = apply_voi_lut(ds.pixel_array, ds) / 4095  # pydicom's output spans 0 .. 2**12 - 1
    assert np.abs(read_dicom(path) - expected).max() < 1e-6
    assert np.abs(apply_window(pixels, 1800, 1500, function) - expected).max() < 1e-6


def test_rescale_signed_and_no_window_use_the_stored_range(tmp_path):
    pixels = np.array([[-2048, -2000], [0, 2047]], dtype=np.int16)  # signed 12 bit: -2048 .. 2047
    path = write_dicom(tmp_path / "s.dcm", pixels, signed=True, RescaleSlope=2, RescaleIntercept=100)
    # range after rescale: [-2048 * 2 + 100, 2047 * 2 + 100]; so y = (x + 2048) / 4095 whatever the slope
    assert np.allclose(read_dicom(path), (pixels + 2048) / 4095, atol=1e-6)
    assert np.allclose(read_dicom(path, window="minmax"), (pixels + 2048) / 4095, atol=1e-6)  # spans the range
    monochrome1 = write_dicom(tmp_path / "m1.dcm", pixels, photometric="MONOCHROME1", signed=True)
    assert np.allclose(read_dicom(monochrome1), 1 - (pixels + 2048) / 4095, atol=1e-6)


def test_voi_lut_sequence_is_used(tmp_path):
    table = Dataset()
    table.LUTDescriptor = [256, 0, 8]  # 256 entries, first input 0, 8-bit output
    table.LUTData = np.arange(255, -1, -1).astype(np.uint16).tobytes()  # an inverting table
    pixels = np.array([[0, 60], [128, 255]], dtype=np.uint16)
    path = write_dicom(tmp_path / "lut.dcm", pixels, bits_stored=8, VOILUTSequence=[table], WindowCenter=9,
                       WindowWidth=3)
    assert np.allclose(read_dicom(path), (255 - pixels) / 255, atol=1e-6)  # the table wins over the window
    assert np.allclose(read_dicom(path, window="range"), pixels / 255, atol=1e-6)


def test_bad_dicoms_are_named(tmp_path):
    rgb = write_dicom(tmp_path / "rgb.dcm", np.zeros((4, 4)), photometric="RGB")
    with pytest.raises(ValueError, match=r"rgb\.dcm"):
        read_dicom(rgb)
    good = write_dicom(tmp_path / "good.dcm", np.zeros((64, 64)))
    (tmp_path / "cut.dcm").write_bytes(good.read_bytes()[:-3000])  # pixel data cut short
    with pytest.raises(ValueError, match=r"cut\.dcm: corrupt or undecodable DICOM"):
        load_radiograph(tmp_path / "cut.dcm")


# --- PNG and JPEG ---------------------------------------------------------------------------------------------------

def smooth(shape, seed=0):
    """A smooth random field in [0, 1] (so lossy JPEG and different resize filters agree closely)."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 6)
    return (field - field.min()) / (field.max() - field.min())


def test_png8_png16_and_jpeg_are_scaled_by_their_range(tmp_path):
    values8 = np.round(smooth((40, 50)) * 255).astype(np.uint8)
    skio.imsave(tmp_path / "a.png", values8, check_contrast=False)
    assert np.array_equal(load_radiograph(tmp_path / "a.png", size=None), values8 / np.float32(255))
    values16 = np.round(smooth((40, 50), 1) * 65535).astype(np.uint16)
    skio.imsave(tmp_path / "b.png", values16, check_contrast=False)  # written by imageio, read by Pillow
    assert Image.open(tmp_path / "b.png").mode.startswith("I")
    assert np.allclose(load_radiograph(tmp_path / "b.png", size=None), values16 / 65535, atol=1e-7)
    dim = (values16 // 16).astype(np.uint16)  # 12 bits in a 16-bit file: dim unless stretched
    skio.imsave(tmp_path / "c.png", dim, check_contrast=False)
    assert load_radiograph(tmp_path / "c.png", size=None).max() < 1 / 16
    assert load_radiograph(tmp_path / "c.png", size=None, window="minmax").max() == 1.0
    Image.fromarray(values8).save(tmp_path / "d.jpg", quality=95)
    decoded = np.asarray(Image.open(tmp_path / "d.jpg"), dtype=np.float32) / 255
    jpeg = load_radiograph(tmp_path / "d.jpg", size=None)
    assert np.array_equal(jpeg, decoded) and np.abs(jpeg - values8 / 255).max() < 0.05


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA"])
def test_colour_files_become_luma(tmp_path, mode):
    rgb = np.stack([np.round(smooth((30, 30), s) * 255) for s in (2, 3, 4)], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb).convert(mode)
    image.save(tmp_path / "c.png")
    oracle = np.asarray(image.convert("L"), dtype=np.float32) / 255  # Pillow's BT.601 luma, rounded to 8 bits
    assert np.abs(load_radiograph(tmp_path / "c.png", size=None) - oracle).max() <= 0.5 / 255 + 1e-6


def test_format_comes_from_the_content_not_the_suffix(tmp_path):
    values = np.full((8, 8), 51, np.uint8)
    Image.fromarray(values).save(tmp_path / "really_a.png", format="PNG")
    (tmp_path / "really_a.png").rename(tmp_path / "named.jpg")
    assert np.allclose(load_radiograph(tmp_path / "named.jpg", size=None), 0.2)


def test_missing_unsupported_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"radiograph .*nothing\.png not found"):
        load_radiograph(tmp_path / "nothing.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"unsupported format '\.txt'"):
        load_radiograph(tmp_path / "notes.txt")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.bmp")
    with pytest.raises(ValueError, match=r"unsupported format '\.bmp'.*DICOM, PNG, JPEG"):
        load_radiograph(tmp_path / "x.bmp")
    (tmp_path / "garbage.png").write_bytes(b"\x00" * 200)
    with pytest.raises(ValueError, match=r"garbage\.png: corrupt file, its content is not PNG"):
        load_radiograph(tmp_path / "garbage.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "f.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "f.png").read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut\.png: corrupt or undecodable image"):
        load_radiograph(tmp_path / "cut.png")


# --- resizing -------------------------------------------------------------------------------------------------------

def test_resize_is_anti_aliased():
    checker = (np.indices((256, 256)).sum(axis=0) % 2).astype(np.float32)  # 1-pixel checkerboard, mean 0.5
    small = resize(checker, 32)
    assert np.abs(small - 0.5).max() < 0.02  # averaged to grey; point sampling would give all 0 or all 1
    assert np.ptp(checker[::8, ::8]) == 0  # (that point sampling)
    field = smooth((300, 260), 5)
    oracle = sk_resize(field, (64, 64), anti_aliasing=True, order=1)
    assert np.abs(resize(field, 64) - oracle).mean() < 0.01
    assert np.allclose(resize(np.full((50, 70), 0.3), 16), 0.3, atol=1e-6)


def test_fits_crop_and_pad():
    image = np.zeros((100, 200), np.float32)
    image[:, :50] = image[:, 150:] = 1.0  # bright bands at both ends of the long side
    assert resize(image, 20, fit="crop").max() < 1e-6  # the central 100 x 100 square has no band
    stretched = resize(image, 20, fit="stretch")
    assert stretched[:, 0].min() > 0.99 and stretched[:, -1].min() > 0.99  # bands kept, squeezed
    padded = resize(image, 200, fit="pad")  # pad (100, 200) -> (200, 200): 50 zero rows above and below
    assert np.array_equal(padded[50:150], image) and padded[:50].max() == 0 and padded[150:].max() == 0


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"size": 0}, ValueError, r"`size` must be >= 1, got 0"),
    ({"size": 2.5}, TypeError, r"`size` must be an int or None, got float"),
    ({"size": True}, TypeError, r"`size` must be an int"),
    ({"fit": "squash"}, ValueError, r"`fit` must be one of \('stretch', 'crop', 'pad'\), got 'squash'"),
    ({"window": "soft"}, ValueError, r"`window` must be 'auto', 'range', 'minmax' or \(center, width\)"),
    ({"window": (1, 2, 3)}, TypeError, r"`window` must be .* a \(center, width\) pair"),
    ({"window": (100, 0)}, ValueError, r"window width must be >= 1, got 0"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, error, match):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(error, match=match):
        load_radiograph(tmp_path / "a.png", **kwargs)


def test_resize_rejects_non_2d_images():
    with pytest.raises(ValueError, match=r"`image` must be 2-D \(H, W\), got shape \(4, 4, 3\)"):
        resize(np.zeros((4, 4, 3)), 2)

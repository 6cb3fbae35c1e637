"""course_lib.chest_xray.datasets on small trees in each dataset's real on-disk layout, written here: NIH (8-bit PNG),
PadChest (16-bit PNG, gzipped label table with the real header), CheXpert-small (JPEG) and MIMIC-CXR-JPG (JPEG).

Every image is a constant grey whose value identifies the file, so a test can tell which file an item came from.
The tree builders are reused by tests/test_data_scripts_cxr.py."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
from cxr_trees import SHAPE, write_image
from torch.utils.data import DataLoader

from course_lib.chest_xray.datasets import (
    PairedViewDataset,
    SingleViewDataset,
    chexpert_pairs,
    mimic_pairs,
    nih_dataset,
    padchest_pairs,
    resized_root,
)
from course_lib.chest_xray.labels import CHEXPERT_LABELS, NIH_LABELS, pair_views, read_nih
from course_lib.data.sample_images import cxr_metadata_csv

# write_image and SHAPE come from cxr_trees, which also writes the larger study trees of the real-data tests


def _load_test_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- NIH -------------------------------------------------------------------------------------------------------------

NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
              "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
NIH_ROWS = [("00000001_000.png", "Cardiomegaly", "1", "PA", 0.2), ("00000001_001.png", "No Finding", "1", "AP", 0.4),
            ("00000002_000.png", "Effusion|Mass", "2", "PA", 0.6), ("00000003_000.png", "Hernia", "3", "AP", 0.8)]


def write_nih_tree(root: Path) -> Path:
    """``root/Data_Entry_2017_v2020.csv`` + ``root/images/*.png`` (8-bit)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [NIH_HEADER] + [f"{name},{labels},0,{pid},58,M,{view},2682,2749,0.143,0.143"
                            for name, labels, pid, view, _ in NIH_ROWS]
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    for name, *_, value in NIH_ROWS:
        write_image(root / "images" / name, value, "png8")
    return root


# --- PadChest --------------------------------------------------------------------------------------------------------

# (ImageID, ImageDir, StudyID, PatientID, Projection, Labels, value): s1 PA + L, s2 PA only, s3 L only,
# s4 AP_horizontal only (never paired), s5 PA + L with an uninformative label list (labels unknown)
PADCHEST_ROWS = [("a_pa.png", 0, "s1", "pA", "PA", "['cardiomegaly', ' pleural effusion']", 0.1),
                 ("a_l.png", 0, "s1", "pA", "L", "['cardiomegaly', ' pleural effusion']", 0.2),
                 ("b_pa.png", 1, "s2", "pA", "PA", "['normal']", 0.3),
                 ("c_l.png", 1, "s3", "pB", "L", "['hiatal hernia']", 0.4),
                 ("d.png", 1, "s4", "pC", "AP_horizontal", "['pneumonia']", 0.5),
                 ("e_pa.png", 2, "s5", "pC", "PA", "['unchanged']", 0.6),
                 ("e_l.png", 2, "s5", "pC", "L", "['unchanged']", 0.7)]
PADCHEST_CSV = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"


def write_padchest_tree(root: Path) -> Path:
    """The label table with PadChest's real 36-column header (gzipped) + ``root/<ImageDir>/<ImageID>`` 16-bit PNGs."""
    header = pd.read_csv(cxr_metadata_csv("padchest"), nrows=0).columns
    rows = [{"ImageID": image, "ImageDir": folder, "StudyID": study, "PatientID": patient, "Projection": view,
             "MethodLabel": "Physician", "Labels": labels} for image, folder, study, patient, view, labels, _ in
            PADCHEST_ROWS]
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=header).to_csv(root / PADCHEST_CSV, index=False, compression="gzip")
    for image, folder, *_, value in PADCHEST_ROWS:
        write_image(root / str(folder) / image, value, "png16")
    return root


# --- CheXpert --------------------------------------------------------------------------------------------------------

# (path under CheXpert-v1.0-small/train, Frontal/Lateral, AP/PA, Pneumonia, Edema, value)
CHEXPERT_ROWS = [("patient00001/study1/view1_frontal.jpg", "Frontal", "PA", "-1.0", "1.0", 0.2),
                 ("patient00001/study1/view2_lateral.jpg", "Lateral", "", "-1.0", "1.0", 0.4),
                 ("patient00002/study1/view1_frontal.jpg", "Frontal", "AP", "", "0.0", 0.6),
                 ("patient00002/study2/view1_frontal.jpg", "Frontal", "PA", "1.0", "", 0.8),
                 ("patient00003/study1/view1_lateral.jpg", "Lateral", "", "0.0", "-1.0", 1.0)]


def write_chexpert_tree(root: Path) -> Path:
    """``root/CheXpert-v1.0-small/train.csv`` (the real header) + JPEGs under ``.../train/patient*/study*/``."""
    folder = root / "CheXpert-v1.0-small"
    folder.mkdir(parents=True, exist_ok=True)
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(CHEXPERT_LABELS)
    lines = [header]
    for path, frontal, appa, pneumonia, edema, value in CHEXPERT_ROWS:
        labels = {name: "" for name in CHEXPERT_LABELS} | {"Pneumonia": pneumonia, "Edema": edema}
        lines.append(f"CheXpert-v1.0-small/train/{path},Female,68,{frontal},{appa}," + ",".join(labels.values()))
        write_image(folder / "train" / path, value, "jpeg")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return root


# --- MIMIC-CXR-JPG ---------------------------------------------------------------------------------------------------

def write_mimic_tree(root: Path) -> Path:
    """The three v2.0.0 tables (gzipped) + ``root/files/pXX/pSUBJECT/sSTUDY/<dicom_id>.jpg``."""
    root.mkdir(parents=True, exist_ok=True)
    _load_test_module("test_cxr_labels").write_mimic_tables(root)
    with gzip.open(root / "mimic-cxr-2.0.0-metadata.csv.gz", "rt") as f:
        metadata = pd.read_csv(f, dtype=str)
    for i, row in metadata.iterrows():
        subject = row["subject_id"]
        write_image(root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{row['study_id']}" /
                    f"{row['dicom_id']}.jpg", 0.1 * (i + 1), "jpeg")
    return root


# --- tests -----------------------------------------------------------------------------------------------------------

def grey(image: torch.Tensor) -> float:
    """The constant value of a test image (JPEG rounds by at most a level or two)."""
    return round(float(image.mean()), 2)


def test_nih_single_view_items(tmp_path):
    dataset = nih_dataset(write_nih_tree(tmp_path / "nih"), size=32)
    assert len(dataset) == 4 and isinstance(dataset, SingleViewDataset)
    item = dataset[2]
    assert set(item) == {"image", "labels", "label_mask", "patient_id"}
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert grey(item["image"]) == 0.6 and item["patient_id"] == "2"
    assert [NIH_LABELS[i] for i in torch.nonzero(item["labels"]).flatten()] == ["Effusion", "Mass"]
    assert item["labels"].dtype == torch.float32 and item["label_mask"].tolist() == [1.0] * 14  # NIH: all known
    assert dataset[1]["labels"].sum() == 0  # No Finding
    assert len(nih_dataset(tmp_path / "nih", views=("PA",))) == 2
    only = nih_dataset(tmp_path / "nih", patients=[3], size=None)
    assert len(only) == 1 and only[0]["image"].shape == (1, *SHAPE)


def test_missing_dataset_files_point_to_the_script(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere not found; run `python data_scripts/nih\.py`"):
        nih_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/Data_Entry_2017_v2020\.csv \(or \.gz\) not found; run "
                                                r"`python data_scripts/nih\.py`"):
        nih_dataset(tmp_path / "empty")
    for builder, script in ((padchest_pairs, "padchest"), (chexpert_pairs, "chexpert"), (mimic_pairs, "mimic")):
        with pytest.raises(FileNotFoundError, match=rf"data_scripts/{script}\.py"):
            builder(tmp_path / "empty")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))  # root=None: COURSE_DATA/<name>
    with pytest.raises(FileNotFoundError, match=r"data/padchest not found"):
        padchest_pairs()


def test_a_resized_copy_is_used_when_present(tmp_path):
    root = write_nih_tree(tmp_path / "nih")
    write_image(resized_root(root, 32) / "images" / "00000001_000.png", 0.9, "png8")
    assert grey(nih_dataset(root, size=32)[0]["image"]) == 0.9  # from resized_32/
    assert grey(nih_dataset(root, size=64)[0]["image"]) == 0.2  # no resized_64/: the original
    assert grey(nih_dataset(root, size=32, image_root=root)[0]["image"]) == 0.2


def test_padchest_pairs_missing_views_and_unknown_labels(tmp_path):
    labels = ["cardiomegaly", "pleural effusion", "hiatal hernia"]
    dataset = padchest_pairs(write_padchest_tree(tmp_path / "padchest"), labels, size=24)
    assert isinstance(dataset, PairedViewDataset)
    assert dataset.frame["study_id"].tolist() == ["s1", "s2", "s3", "s5"]  # s4 has only an AP supine image
    items = [dataset[i] for i in range(len(dataset))]
    assert set(items[0]) == {"pa", "lateral", "present", "labels", "label_mask", "patient_id"}
    assert [item["present"].tolist() for item in items] == [[True, True], [True, False], [False, True], [True, True]]
    assert items[0]["present"].dtype == torch.bool and items[0]["pa"].shape == (1, 24, 24)
    assert [(grey(item["pa"]), grey(item["lateral"])) for item in items] == [(0.1, 0.2), (0.3, 0.0), (0.0, 0.4),
                                                                            (0.6, 0.7)]  # 16-bit values read back
    assert items[1]["lateral"].abs().max() == 0 and items[2]["pa"].abs().max() == 0  # missing view: exact zeros
    assert items[0]["labels"].tolist() == [1, 1, 0] and items[2]["labels"].tolist() == [0, 0, 1]
    assert items[3]["label_mask"].tolist() == [0, 0, 0] and items[3]["labels"].tolist() == [0, 0, 0]  # 'unchanged'
    assert [item["patient_id"] for item in items] == ["pA", "pA", "pB", "pC"]
    both = padchest_pairs(tmp_path / "padchest", labels, size=24, require_both=True)
    assert both.frame["study_id"].tolist() == ["s1", "s5"]
    every = padchest_pairs(tmp_path / "padchest", "all", size=8)  # every label listed, most frequent first
    assert every.labels == ["cardiomegaly", "pleural effusion", "hiatal hernia", "normal", "pneumonia"]


def test_paired_batches_with_the_default_collate(tmp_path):
    dataset = padchest_pairs(write_padchest_tree(tmp_path / "padchest"), ["cardiomegaly", "hiatal hernia"], size=16)
    batch = next(iter(DataLoader(dataset, batch_size=3, shuffle=False)))
    assert batch["pa"].shape == batch["lateral"].shape == (3, 1, 16, 16)
    assert batch["present"].dtype == torch.bool and batch["present"].tolist() == [[True, True], [True, False],
                                                                                 [False, True]]
    assert batch["labels"].shape == batch["label_mask"].shape == (3, 2) and batch["patient_id"] == ["pA", "pA", "pB"]
    single = next(iter(DataLoader(nih_dataset(write_nih_tree(tmp_path / "nih"), size=16), batch_size=4)))
    assert single["image"].shape == (4, 1, 16, 16) and single["labels"].shape == (4, 14)


@pytest.mark.parametrize(("uncertain", "labels", "mask"), [
    ("ignore", [0, 1], [0, 1]),  # patient00001/study1: Pneumonia -1 -> unknown, Edema 1
    ("ones", [1, 1], [1, 1]),
    ("zeros", [0, 1], [1, 1]),
])
def test_chexpert_pairs_and_uncertainty(tmp_path, uncertain, labels, mask):
    root = write_chexpert_tree(tmp_path / "chexpert")
    dataset = chexpert_pairs(root, ["Pneumonia", "Edema"], size=20, uncertain=uncertain)
    # patient00002/study1 has only an AP frontal: not a PA, so not paired
    assert dataset.frame["study_id"].tolist() == ["patient00001/study1", "patient00002/study2", "patient00003/study1"]
    first = dataset[0]
    assert first["labels"].tolist() == labels and first["label_mask"].tolist() == mask
    assert (grey(first["pa"]), grey(first["lateral"])) == (0.2, 0.4) and first["present"].tolist() == [True, True]
    assert dataset[2]["present"].tolist() == [False, True] and dataset[2]["patient_id"] == "patient00003"
    blank = chexpert_pairs(root, ["Pneumonia", "Edema"], size=20, uncertain=uncertain, blank="zeros")[1]
    assert blank["label_mask"].tolist() == [1, 1] and blank["labels"].tolist() == [1, 0]  # Edema blank -> 0


def test_mimic_pairs_split_and_partial_copies(tmp_path):
    root = write_mimic_tree(tmp_path / "mimic")
    everything = mimic_pairs(root, size=16)
    assert everything.frame["study_id"].tolist() == ["50414267", "53189527"]  # the AP-only study is not paired
    train = mimic_pairs(root, size=16, split="train")
    assert len(train) == 2 and (train.frame["split"] == "train").all()
    assert len(mimic_pairs(root, size=16, split="test")) == 0  # its only image has no ViewPosition
    first = train[0]
    assert (grey(first["pa"]), grey(first["lateral"])) == (0.1, 0.2)
    assert first["label_mask"][list(CHEXPERT_LABELS).index("No Finding")] == 1
    lateral = root / train.frame["lateral_path"].iloc[1]
    lateral.unlink()  # a partial download
    with pytest.raises(FileNotFoundError, match=rf"radiograph .*{lateral.name} not found"):
        train[1]
    partial = mimic_pairs(root, size=16, split="train", skip_missing=True)
    assert partial[1]["present"].tolist() == [True, False] and partial[1]["lateral"].abs().max() == 0
    with pytest.raises(ValueError, match=r"`split` must be None, 'train', 'validate' or 'test', got 'val'"):
        mimic_pairs(root, split="val")


def test_transforms_and_native_sizes(tmp_path):
    root = write_padchest_tree(tmp_path / "padchest")
    dataset = padchest_pairs(root, ["cardiomegaly"], size=None, transform=lambda image: image * 0 + 0.5)
    item = dataset[1]  # PA only
    assert item["pa"].shape == item["lateral"].shape == (1, *SHAPE)  # the missing view takes the present one's shape
    assert item["pa"].unique().tolist() == [0.5] and item["lateral"].abs().max() == 0  # no transform on a missing view


def test_datasets_validate_their_frames(tmp_path):
    root = write_nih_tree(tmp_path / "nih")
    frame = read_nih(root / "Data_Entry_2017_v2020.csv")
    with pytest.raises(ValueError, match=r"label columns \['Fracture'\] are not in the frame"):
        SingleViewDataset(frame, root, ["Fracture"])
    with pytest.raises(ValueError, match="`labels` must name at least one label column"):
        SingleViewDataset(frame, root, [])
    with pytest.raises(ValueError, match=r"`frame` needs 'path' and 'patient_id' columns"):
        SingleViewDataset(frame.drop(columns="path"), root, NIH_LABELS)
    paired = pair_views(frame)
    with pytest.raises(ValueError, match=r"lacks \['lateral_path'\]; build it with .*pair_views"):
        PairedViewDataset(paired.drop(columns="lateral_path"), root, NIH_LABELS)
    empty = paired.assign(pa_path=None, has_pa=False)
    with pytest.raises(ValueError, match=r"2 rows of `paired_frame` have neither view \(first: row 0, study 0+1_000"):
        PairedViewDataset(empty, root, NIH_LABELS)
    with pytest.raises(ValueError, match=r"`split` must be 'train' or 'valid'"):
        chexpert_pairs(root, split="test")
    with pytest.raises(ValueError, match=r"`fit` must be one of \('stretch', 'crop', 'pad'\), got 'fill'"):
        SingleViewDataset(frame, root, NIH_LABELS, fit="fill")  # at construction, not at the first item
    with pytest.raises(TypeError, match=r"`size` must be an int or None, got str"):
        PairedViewDataset(paired, root, NIH_LABELS, size="224")

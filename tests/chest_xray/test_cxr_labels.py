"""course_lib.chest_xray.labels on the real NIH, PadChest and CheXpert tables (shipped with torchxrayvision), checked
against hand-written pandas queries on the raw CSVs, and on MIMIC-CXR-JPG tables written here in the exact format.

The counts asserted here are the numbers quoted in the chapter 1 notes."""

from __future__ import annotations

import functools
import gzip

import numpy as np
import pandas as pd
import pytest

from course_lib.chest_xray.labels import (
    CHEXPERT_LABELS,
    NIH_LABELS,
    PADCHEST_LABELS,
    label_columns,
    padchest_label_counts,
    pair_views,
    read_chexpert,
    read_mimic,
    read_nih,
    read_padchest,
)
from course_lib.data.sample_images import cxr_metadata_csv
from course_lib.data.splits import patient_split

RAW_COLUMNS = {"nih": ["Finding Labels"], "padchest": ["ImageID", "ImageDir", "Labels"],
               "chexpert": ["Path", "Frontal/Lateral", "AP/PA", *CHEXPERT_LABELS]}


@functools.cache
def raw(name: str) -> pd.DataFrame:
    """The CSV as pandas reads it, for the hand-written queries (only the columns they need: faster)."""
    return pd.read_csv(cxr_metadata_csv(name), usecols=RAW_COLUMNS[name])


@functools.cache
def tidy(name: str) -> pd.DataFrame:
    reader = {"nih": read_nih, "padchest": read_padchest, "chexpert": read_chexpert}[name]
    return reader(cxr_metadata_csv(name))


@functools.cache
def paired(name: str) -> pd.DataFrame:
    return pair_views(tidy(name))


# --- NIH ChestX-ray14 -----------------------------------------------------------------------------------------------

def test_nih_counts_and_views():
    frame = tidy("nih")
    print(f"NIH: {len(frame)} images, {frame.patient_id.nunique()} patients")
    assert len(frame) == 112_120 and frame["patient_id"].nunique() == 30_805
    assert frame["view"].value_counts().to_dict() == {"PA": 67_310, "AP": 44_810}  # no lateral views at all
    assert list(frame.columns[:5]) == ["path", "patient_id", "study_id", "view", "view_raw"]
    assert label_columns(frame) == list(NIH_LABELS)
    assert frame["path"].iloc[0] == "images/00000001_000.png" and frame["study_id"].iloc[0] == "00000001_000"
    assert not frame[list(NIH_LABELS)].isna().any().any()  # a list of positives: everything else is a known 0


@pytest.mark.parametrize(("label", "count"), [("Cardiomegaly", 2_776), ("Effusion", 13_317), ("Hernia", 227),
                                              ("Pneumonia", 1_431), ("Pleural_Thickening", 3_385)])
def test_nih_labels_match_a_regex_on_the_raw_column(label, count):
    findings = raw("nih")["Finding Labels"]
    expected = findings.str.contains(rf"(?:^|\|){label}(?:\||$)")  # whole names between '|' separators
    assert tidy("nih")[label].eq(1).to_numpy().tolist() == expected.tolist() and expected.sum() == count


def test_nih_no_finding_is_all_zeros_and_a_known_row():
    frame, findings = tidy("nih"), raw("nih")["Finding Labels"]
    all_zero = frame[list(NIH_LABELS)].sum(axis=1).eq(0)
    assert (all_zero == findings.eq("No Finding")).all() and all_zero.sum() == 60_361
    row = frame.set_index("study_id").loc["00000001_002"]  # 'Cardiomegaly|Effusion' in the CSV
    assert [label for label in NIH_LABELS if row[label] == 1] == ["Cardiomegaly", "Effusion"]


def test_nih_unknown_label_is_named(tmp_path):
    csv = tmp_path / "Data_Entry_2017_v2020.csv"
    csv.write_text("Image Index,Finding Labels,Patient ID,View Position\n00000001_000.png,Cardiomegaly|Cancer,1,PA\n")
    with pytest.raises(ValueError, match=r"unknown NIH label 'Cancer' in row 0 \(00000001_000.png\)"):
        read_nih(csv)
    with pytest.raises(FileNotFoundError, match="NIH Data_Entry table .*missing.csv not found"):
        read_nih(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"is not the CheXpert table: columns \['Path', "):
        read_chexpert(cxr_metadata_csv("nih"))


# --- PadChest -------------------------------------------------------------------------------------------------------

def test_padchest_rows_views_and_skipped_rows():
    frame = tidy("padchest")
    assert len(raw("padchest")) == 160_861
    assert frame.attrs["skipped_rows"] == 103 == raw("padchest")["Labels"].isna().sum()  # NaN label cells
    assert len(frame) == 160_861 - 103 and frame["patient_id"].nunique() == 67_594
    assert frame["view"].value_counts().to_dict() == {"PA": 91_663, "LATERAL": 49_555, "AP_SUPINE": 14_335,
                                                      "AP": 4_556, "OTHER": 641, "UNKNOWN": 8}
    kept = raw("padchest")[raw("padchest")["Labels"].notna()].reset_index(drop=True)
    assert (frame["path"] == kept["ImageDir"].astype(str) + "/" + kept["ImageID"]).all()
    assert frame["label_source"].value_counts().to_dict() == {"RNN_model": 121_705, "Physician": 39_053}
    assert label_columns(frame) == list(PADCHEST_LABELS)


@pytest.mark.parametrize(("label", "count"), [("cardiomegaly", 15_022), ("pleural effusion", 9_853),
                                              ("COPD signs", 23_280), ("nodule", 3_748), ("atelectasis", 2_905),
                                              ("hiatal hernia", 2_363), ("flattened diaphragm", 990)])
def test_padchest_labels_match_a_regex_on_the_raw_list(label, count):
    kept = raw("padchest")[raw("padchest")["Labels"].notna()].reset_index(drop=True)
    # a whole list item: quote, optional leading spaces (PadChest has ' pneumonia' too), the name, quote;
    # so 'nodule' does not match 'multiple nodules' and 'atelectasis' not 'laminar atelectasis'
    expected = kept["Labels"].str.contains(rf"'\s*{label}'", regex=True)
    assert tidy("padchest")[label].eq(1).tolist() == expected.tolist() and expected.sum() == count


def test_padchest_uninformative_rows_are_unknown():
    frame = tidy("padchest")
    unknown = frame["cardiomegaly"].isna()
    assert unknown.sum() == 5_766 and frame.loc[unknown, list(PADCHEST_LABELS)].isna().all().all()
    kept = raw("padchest")[raw("padchest")["Labels"].notna()].reset_index(drop=True)
    only = kept["Labels"].str.replace(r"'\s*(?:exclude|unchanged)?'", "", regex=True).str.fullmatch(r"\[[,\s]*\]")
    assert (only == unknown).all()  # exactly the rows listing nothing but '', 'exclude', 'unchanged'


def test_padchest_garbage_rows_are_skipped_and_counted(tmp_path):
    header = "ImageID,ImageDir,StudyID,PatientID,Projection,MethodLabel,Labels\n"
    rows = ['a.png,0,s1,p1,PA,Physician,"[\'cardiomegaly\', \' pneumonia\']"',
            'b.png,0,s1,p1,L,Physician,"[\'cardiomegaly\', \' pneumonia\']"',
            'c.png,1,s2,p2,AP_horizontal,RNN_model,"[\'\']"',
            'd.png,1,s3,p3,PA,RNN_model,',  # NaN
            'e.png,1,s4,p4,PA,RNN_model,"[\'unterminated"',
            'f.png,1,s5,p5,PA,RNN_model,"__import__(\'os\').system(\'echo hacked\')"',  # never executed
            'g.png,1,s6,p6,PA,RNN_model,"[1, 2]"']
    csv = tmp_path / "PADCHEST.csv.gz"
    with gzip.open(csv, "wt") as f:
        f.write(header + "\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match=r"labels \['nodule'\] never occur in .*PADCHEST\.csv\.gz"):
        frame = read_padchest(csv, labels=["cardiomegaly", "pneumonia", "nodule"])
    assert frame.attrs["skipped_rows"] == 4 and frame["path"].tolist() == ["0/a.png", "0/b.png", "1/c.png"]
    assert frame["view"].tolist() == ["PA", "LATERAL", "AP_SUPINE"]
    assert frame[["cardiomegaly", "pneumonia", "nodule"]].to_numpy().tolist()[:2] == [[1, 1, 0], [1, 1, 0]]
    assert frame.loc[2, ["cardiomegaly", "pneumonia", "nodule"]].isna().all()
    assert read_padchest(csv, labels="all").columns[-2:].tolist() == ["cardiomegaly", "pneumonia"]
    with pytest.raises(ValueError, match=r"`labels` must be a sequence of PadChest label names or 'all'"):
        read_padchest(csv, labels="cardiomegaly")


def test_padchest_full_vocabulary():
    counts = padchest_label_counts(cxr_metadata_csv("padchest"))
    assert counts.index[0] == "normal" and counts["normal"] == 50_616 and counts["cardiomegaly"] == 15_022
    assert len(counts) == 193 and set(PADCHEST_LABELS) <= set(counts.index)


# --- CheXpert -------------------------------------------------------------------------------------------------------

def test_chexpert_ids_and_views():
    frame = tidy("chexpert")
    assert len(frame) == 223_414 and frame["patient_id"].nunique() == 64_540 and frame["study_id"].nunique() == 187_641
    assert frame["view"].value_counts().to_dict() == {"AP": 161_590, "LATERAL": 32_387, "PA": 29_420, "OTHER": 17}
    first = frame.iloc[0]
    assert (first["patient_id"], first["study_id"], first["view_raw"]) == ("patient00001", "patient00001/study1",
                                                                           "Frontal/AP")


def test_chexpert_default_policy_on_the_full_table():
    source, result = raw("chexpert")["Pneumonia"], tidy("chexpert")["Pneumonia"]  # U-Ignore, blank = unknown
    counts = {value: int(source.eq(value).sum()) for value in (1, 0, -1)} | {"blank": int(source.isna().sum())}
    assert counts == {1: 6_039, 0: 2_799, -1: 18_770, "blank": 195_806}
    assert (int(result.eq(1).sum()), int(result.eq(0).sum()), int(result.isna().sum())) == (6_039, 2_799,
                                                                                            18_770 + 195_806)
    values = tidy("chexpert")[list(CHEXPERT_LABELS)].to_numpy()
    assert set(np.unique(values[~np.isnan(values)])) == {0.0, 1.0}


@pytest.fixture(scope="module")
def chexpert_slice(tmp_path_factory):
    """The first 30,000 rows of the real train.csv (re-reading all 223k rows per policy is slow)."""
    path = tmp_path_factory.mktemp("chexpert") / "train.csv"
    pd.read_csv(cxr_metadata_csv("chexpert"), nrows=30_000).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("uncertain", "blank"), [("ignore", "nan"), ("ones", "nan"), ("zeros", "nan"),
                                                  ("ignore", "zeros"), ("ones", "zeros")])
@pytest.mark.parametrize("label", ["Pneumonia", "Atelectasis", "Edema"])
def test_chexpert_uncertainty_policies(chexpert_slice, uncertain, blank, label):
    frame = read_chexpert(chexpert_slice, uncertain=uncertain, blank=blank)
    source = pd.read_csv(chexpert_slice, usecols=[label])[label]
    counts = {value: int(source.eq(value).sum()) for value in (1, 0, -1)} | {"blank": int(source.isna().sum())}
    assert min(counts.values()) > 100  # every case occurs in the slice
    ones = counts[1] + (counts[-1] if uncertain == "ones" else 0)
    zeros = counts[0] + (counts[-1] if uncertain == "zeros" else 0) + (counts["blank"] if blank == "zeros" else 0)
    unknown = (counts[-1] if uncertain == "ignore" else 0) + (counts["blank"] if blank == "nan" else 0)
    result = frame[label]
    assert (int(result.eq(1).sum()), int(result.eq(0).sum()), int(result.isna().sum())) == (ones, zeros, unknown)
    assert (result[source.eq(1)] == 1).all() and (result[source.eq(0)] == 0).all()  # certain values never change


def test_chexpert_bad_values_and_policies(tmp_path):
    csv = tmp_path / "train.csv"
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(CHEXPERT_LABELS)
    csv.write_text(header + "\nCheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,F,60,Frontal,PA,"
                   + ",".join(["2"] + [""] * 13) + "\n")
    with pytest.raises(ValueError, match=r"train\.csv: column 'No Finding' holds 2; expected 1, 0, -1 or blank"):
        read_chexpert(csv)
    with pytest.raises(ValueError, match=r"`uncertain` must be 'ignore' \(U-Ignore\), 'ones' \(U-Ones\)"):
        read_chexpert(csv, uncertain="mixed")
    with pytest.raises(ValueError, match=r"`blank` must be 'nan'"):
        read_chexpert(csv, blank="ones")
    csv.write_text(header + "\nimages/view1.jpg,F,60,Frontal,PA," + ",".join([""] * 14) + "\n")
    with pytest.raises(ValueError, match=r"row 0 path 'images/view1\.jpg' has no patientNNNNN/studyN/ part"):
        read_chexpert(csv)


# --- pairs of views -------------------------------------------------------------------------------------------------

def test_pa_lateral_pair_counts_on_the_real_tables():
    counts = {}
    for name in ("padchest", "chexpert"):
        pairs = paired(name)
        counts[name] = int((pairs["has_pa"] & pairs["has_lateral"]).sum())
        print(f"{name}: {counts[name]} studies with a PA and a lateral image; {int(pairs.has_pa.sum())} with a PA, "
              f"{int(pairs.has_lateral.sum())} with a lateral")
        assert pairs.groupby(["patient_id", "study_id"]).ngroups == len(pairs)  # one row per study
        assert (pairs["has_pa"] == pairs["pa_path"].notna()).all() and (pairs["has_pa"] | pairs["has_lateral"]).all()
    assert counts == {"padchest": 47_630, "chexpert": 26_524}
    # the same count from a hand-written query: studies with both a PA and a lateral row
    frame = tidy("chexpert")
    views = frame.groupby(["study_id", "view"]).size().unstack(fill_value=0)  # (studies, views) image counts
    assert int(((views["PA"] > 0) & (views["LATERAL"] > 0)).sum()) == 26_524
    accepting_ap = pair_views(frame, labels=[], frontal=("PA", "AP"))
    assert int((accepting_ap["has_pa"] & accepting_ap["has_lateral"]).sum()) == 31_413


def test_nih_has_no_pairs():
    pairs = paired("nih")
    assert len(pairs) == 67_310 and not pairs["has_lateral"].any()  # one PA per study, never a lateral


def test_pair_rules_on_a_small_frame():
    frame = pd.DataFrame({
        "path": ["s1/pa_b.png", "s1/pa_a.png", "s1/lat.png", "s1/ap.png", "s2/lat_b.png", "s2/lat_a.png", "s3/ap.png",
                 "x/pa.png"],
        "patient_id": ["p1", "p1", "p1", "p1", "p2", "p2", "p3", "p9"],
        "study_id": ["s1", "s1", "s1", "s1", "s2", "s2", "s3", "s1"],  # study 's1' of another patient too
        "view": ["PA", "PA", "LL", "AP", "LATERAL", "LATERAL", "AP", "PA"],
        "Effusion": [1.0, np.nan, 0.0, 1.0, np.nan, np.nan, 1.0, 0.0],
        "Edema": [0.0, 0.0, np.nan, 0.0, 1.0, np.nan, 0.0, np.nan]})
    pairs = pair_views(frame)
    assert pairs[["patient_id", "study_id"]].values.tolist() == [["p1", "s1"], ["p2", "s2"], ["p9", "s1"]]
    assert pairs["pa_path"].tolist() == ["s1/pa_a.png", None, "x/pa.png"]  # first by sorted path
    assert pairs["lateral_path"].tolist() == ["s1/lat.png", "s2/lat_a.png", None]
    assert pairs["has_pa"].tolist() == [True, False, True] and pairs["has_lateral"].tolist() == [True, True, False]
    # a study's label is the max over its rows ignoring NaN (p1/s1 Effusion: 1, NaN, 0, 1 -> 1); all NaN -> NaN
    assert pairs["Effusion"].fillna(-9).tolist() == [1.0, -9, 0.0]
    assert pairs["Edema"].fillna(-9).tolist() == [0.0, 1.0, -9]
    with_ap = pair_views(frame, frontal=("PA", "AP"))
    assert with_ap["pa_path"].tolist()[0] == "s1/ap.png" and len(with_ap) == 4  # AP sorts first; s3 now appears
    with pytest.raises(ValueError, match=r"`frame` lacks the columns \['view'\]"):
        pair_views(frame.drop(columns="view"))
    with pytest.raises(ValueError, match=r"label columns \['Mass'\] are not in `frame`"):
        pair_views(frame, labels=["Mass"])


# --- patient split --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["nih", "chexpert", "padchest"])
def test_patient_split_has_no_leakage(name):
    frame = tidy(name)
    parts = patient_split(frame, fractions=(0.7, 0.1, 0.2), seed=0)
    patients = [set(p["patient_id"]) for p in parts]
    assert all(not (a & b) for i, a in enumerate(patients) for b in patients[i + 1:])
    assert sum(len(p) for p in parts) == len(frame) and set().union(*patients) == set(frame["patient_id"])
    n = frame["patient_id"].nunique()
    assert [len(p) for p in patients] == [round(0.7 * n), round(0.8 * n) - round(0.7 * n), n - round(0.8 * n)]
    # split images first, then pair each part: a study never straddles two parts
    paired_patients = [set(pair_views(part, labels=[])["patient_id"]) for part in parts]
    assert all(pp <= p for pp, p in zip(paired_patients, patients, strict=True))


def test_patient_split_is_seeded_and_validated():
    frame = tidy("chexpert")
    a, b = patient_split(frame, seed=1), patient_split(frame, seed=1)
    assert all(x.index.equals(y.index) for x, y in zip(a, b, strict=True))
    assert not patient_split(frame, seed=2)[2].index.equals(a[2].index)
    with pytest.raises(ValueError, match=r"`fractions` must be non-negative and sum to 1, got \[0\.5, 0\.2\]"):
        patient_split(frame, fractions=(0.5, 0.2))
    with pytest.raises(ValueError, match="needs a 'patient_id' column"):
        patient_split(frame.drop(columns="patient_id"))


# --- MIMIC-CXR-JPG (tables in the exact v2.0.0 format; the real ones need PhysioNet credentials) -------------------

MIMIC_METADATA = """dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,\
StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning
02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,10000032,50414267,CHEST (PA AND LAT),PA,3056,2544,21800506,213014.531,\
CHEST (PA AND LAT),postero-anterior,Erect
174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962,10000032,50414267,CHEST (PA AND LAT),LATERAL,3056,2544,21800506,\
213014.531,CHEST (PA AND LAT),lateral,Erect
2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab,10000032,53189527,CHEST (PA AND LAT),PA,3056,2544,21800626,165500.312,\
CHEST (PA AND LAT),postero-anterior,Erect
e084de3b-be89b11e-20fe3f9f-9c8d8dfe-4cfd202c,10000032,53189527,CHEST (PA AND LAT),LL,3056,2544,21800626,165500.312,\
CHEST (PA AND LAT),left lateral,Erect
68b5c4b1-227d0485-9cc38c3f-7b84ab51-4b472714,10000764,57375967,CHEST (PORTABLE AP),AP,2705,2539,21321015,\
111016.312,CHEST (PORTABLE AP),antero-posterior,Erect
096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4,10000764,57375967,CHEST (PORTABLE AP),AP AXIAL,2705,2539,21321015,\
111016.312,CHEST (PORTABLE AP),antero-posterior,Erect
8959e402-2175d68d-edba5a6c-520be7cd-c7bcac96,10000898,50771383,CHEST (PA AND LAT),,3056,2544,21200523,120000.000,\
CHEST (PA AND LAT),,Erect
"""
MIMIC_CHEXPERT = ("subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,"
                  "Fracture,Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,"
                  "Pneumothorax,Support Devices\n"
                  "10000032,50414267,,,,,,,,,1.0,,,,,\n"
                  "10000032,53189527,-1.0,1.0,,0.0,,,,,,1.0,,-1.0,0.0,\n"
                  "10000764,57375967,,,1.0,,,,,,,,,-1.0,,\n")  # study 50771383 has no label row
MIMIC_SPLIT = """dicom_id,study_id,subject_id,split
02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,50414267,10000032,train
174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962,50414267,10000032,train
2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab,53189527,10000032,train
e084de3b-be89b11e-20fe3f9f-9c8d8dfe-4cfd202c,53189527,10000032,train
68b5c4b1-227d0485-9cc38c3f-7b84ab51-4b472714,57375967,10000764,validate
096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4,57375967,10000764,validate
8959e402-2175d68d-edba5a6c-520be7cd-c7bcac96,50771383,10000898,test
"""


def write_mimic_tables(folder, gz: bool = True):
    """The three MIMIC-CXR-JPG v2.0.0 tables in ``folder`` (gzipped as PhysioNet ships them)."""
    paths = []
    for name, text in (("metadata", MIMIC_METADATA), ("chexpert", MIMIC_CHEXPERT), ("split", MIMIC_SPLIT)):
        path = folder / f"mimic-cxr-2.0.0-{name}.csv{'.gz' if gz else ''}"
        with (gzip.open(path, "wt") if gz else open(path, "w")) as f:
            f.write(text)
        paths.append(path)
    return paths


def test_mimic_tables_are_joined(tmp_path):
    metadata, chexpert, split = write_mimic_tables(tmp_path)
    frame = read_mimic(metadata, chexpert, split)
    assert frame["path"].iloc[0] == "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg"
    assert frame["view"].tolist() == ["PA", "LATERAL", "PA", "LL", "AP", "OTHER", "UNKNOWN"]
    assert frame["split"].tolist() == ["train"] * 4 + ["validate"] * 2 + ["test"]
    assert (frame["patient_id"].tolist()[4], frame["study_id"].tolist()[4]) == ("10000764", "57375967")
    # U-Ignore (default): -1 -> NaN; blank -> NaN; a study without a label row -> all NaN
    assert frame["Cardiomegaly"].tolist()[2:4] == [1.0, 1.0] and np.isnan(frame["Atelectasis"].iloc[2])
    assert frame.iloc[6][list(CHEXPERT_LABELS)].isna().all()
    ones = read_mimic(metadata, chexpert, uncertain="ones", blank="zeros")
    assert ones["Atelectasis"].tolist()[:4] == [0.0, 0.0, 1.0, 1.0] and "split" not in ones.columns
    assert ones["Pneumonia"].tolist()[4] == 1.0 and ones.iloc[6][list(CHEXPERT_LABELS)].isna().all()
    pairs = pair_views(frame)
    assert pairs["study_id"].tolist() == ["50414267", "53189527"] and pairs["has_lateral"].all()
    assert pairs["split"].tolist() == ["train", "train"]
    (tmp_path / "plain").mkdir()
    plain = read_mimic(*write_mimic_tables(tmp_path / "plain", gz=False)[:2])  # plain CSV works the same
    assert plain["path"].tolist() == frame["path"].tolist()


def test_mimic_duplicate_study_rows_are_refused(tmp_path):
    metadata, chexpert, _ = write_mimic_tables(tmp_path)
    with gzip.open(chexpert, "at") as f:
        f.write("10000032,50414267,,,,,,,,,1.0,,,,,\n")
    with pytest.raises(ValueError, match="a study appears twice"):
        read_mimic(metadata, chexpert)

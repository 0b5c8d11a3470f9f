import json

import pytest

from volseg.errors import InputError
from volseg.labels import LabelInfo, LabelTable, default_color, parse_labels, read_labels


def test_plain_index_to_name_object(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"1": "spleen", "2": "kidney_right", "5": "liver"}))
    table = read_labels(path)
    assert table.names() == {1: "spleen", 2: "kidney_right", 5: "liver"}
    assert table[2].display_name == "Kidney right"


def test_volseg_labels_json_round_trip():
    table = LabelTable([LabelInfo(1, "lung_left", "Left lung", (10, 20, 30), "SCT:123037004", "SCT:44029006")])
    again = parse_labels(json.loads(table.to_json()))
    assert again[1] == table[1]


def test_nnunet_dataset_json_labels_block():
    table = parse_labels({"labels": {"background": 0, "liver": 1, "tumour": 2}, "channel_names": {"0": "CT"}})
    assert table.names() == {1: "liver", 2: "tumour"}


@pytest.mark.parametrize("payload", [[1, 2], {"a": "b"}, {"labels": [{"index": 0, "name": "bg"}]}])
def test_invalid_label_files(tmp_path, payload):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(InputError, match="bad.json"):
        read_labels(path)


def test_duplicate_names_refused():
    with pytest.raises(ValueError, match="twice"):
        LabelTable.from_names({1: "a", 2: "a"})


def test_default_colours_are_distinct_and_deterministic():
    colours = [default_color(i) for i in range(1, 120)]
    assert len(set(colours)) == len(colours)
    assert default_color(7) == default_color(7)

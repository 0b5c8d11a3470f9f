"""write_study: every file renders the one report; colour tables; report.json written last."""
from tests.reports.factories import small_phantom
from volseg.labels import LabelTable
from volseg.reports import outputs
from volseg.reports.colour_tables import itksnap_labels, read_slicer_ctbl, slicer_ctbl
from volseg.segmenters.catalogue import get_entry


def test_slicer_colour_table_round_trip():
    table = get_entry("classic-ct").label_table()
    parsed = read_slicer_ctbl(slicer_ctbl(table))
    assert parsed[0] == ("background", (0, 0, 0, 0))
    for index, info in table.items():
        assert parsed[index] == (info.name, (*info.color, 255))
    assert len(parsed) == len(table) + 1


def test_itksnap_label_file_lines():
    table = LabelTable.from_names({1: "liver", 2: "kidney_left", 40: "spleen"})
    lines = [ln for ln in itksnap_labels(table).splitlines() if not ln.startswith("#")]
    assert lines[0].split()[:7] == ["0", "0", "0", "0", "0.00", "0", "0"] and lines[0].endswith('"Clear Label"')
    fields = lines[3].split(None, 7)
    assert fields[0] == "40" and tuple(int(v) for v in fields[1:4]) == table[40].color
    assert fields[4:7] == ["1.00", "1", "1"] and fields[7] == '"Spleen"'


def test_write_study_writes_report_json_last(monkeypatch, phantom_report, tmp_path):
    order = []
    real = outputs.write_text

    def recording(path, text):
        order.append(path.name)
        return real(path, text)

    monkeypatch.setattr(outputs, "write_text", recording)
    phantom = small_phantom()
    written = outputs.write_study(tmp_path, phantom_report, phantom.labels, phantom.truth)
    assert order[-1] == "report.json"
    assert set(written) >= {"segmentation", "labels", "slicer_colours", "itksnap_labels", "volumetry", "html",
                            "report"}
    assert all(p.exists() for p in written.values())
    assert written["html"].stat().st_mtime_ns <= written["report"].stat().st_mtime_ns


def test_no_html_when_asked(phantom_report, tmp_path):
    phantom = small_phantom()
    written = outputs.write_study(tmp_path, phantom_report, phantom.labels, phantom.truth, html=False)
    assert "html" not in written and not (tmp_path / "report.html").exists()

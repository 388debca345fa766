"""Real PFM / STEM files (../shared/real, public MIT data): channels, calibration, PFM clean-up.

Skipped where the folder is absent (a user's fresh clone). The expected channel names and scan
sizes are what the files' own headers say (see ../shared/real/README.md).
"""

from pathlib import Path

import numpy as np
import pytest

from napari_rvae.cli import main
from napari_rvae.detect.walls import analyse_walls
from napari_rvae.io.movie import find_channel, read_movie

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="real data folder ../shared/real is absent")


@pytest.mark.parametrize("name,channels,field_um", [
    ("pfm/PZT_thick0004.h5", ["HeightRetrace", "AmplitudeRetrace", "NapAmplitudeRetrace", "DeflectionRetrace",
                              "PhaseRetrace", "NapPhaseRetrace", "UserIn0Retrace", "NapUserIn0Retrace"], 3.0),
    ("pfm/PTO_Funakubo0001.h5", ["HeightRetrace", "AmplitudeRetrace", "DeflectionRetrace", "PhaseRetrace"], 1.0),
    ("pfm/PMN28Pt0000.h5", ["HeightRetrace", "AmplitudeRetrace", "DeflectionRetrace", "PhaseRetrace"], 4.0),
    ("pfm/IgorIBWReader_P0089OP0027.ibw", ["HeightRetrace", "AmplitudeRetrace", "DeflectionRetrace", "PhaseRetrace",
                                           "UserIn0Retrace"], 2.0),
    ("pfm/IgorIBWReader_ImageStack_BTFO_DSO.ibw", ["HeightRetrace", "AmplitudeRetrace", "DeflectionRetrace",
                                                   "PhaseRetrace"], 2.0),
])
def test_pfm_channels_and_calibration(name, channels, field_um):
    movies = read_movie(REAL / name)
    assert [m.channel for m in movies] == channels
    for m in movies:
        assert m.data.shape == (1, 256, 256)
        assert m.units[1:] == ("µm", "µm")
        # Asylum's scan size spans the first to the last pixel centre: size / 255 per pixel
        assert m.scale[1] == pytest.approx(field_um / 255, rel=1e-3)
    phase = movies[find_channel(movies, None, prefer="phase")]
    assert phase.channel == "PhaseRetrace" and phase.metadata["value_unit"] == "deg"


def test_h5_and_ibw_share_orientation_scan_lines_are_rows():
    # Asylum scan lines run along x: the line-to-line offsets make the row medians jumpier than
    # the column medians (curvature of the median profiles), for both file types
    for name in ("pfm/PMN28Pt0000.h5", "pfm/PTO_Funakubo0001.h5", "pfm/IgorIBWReader_P0089OP0027.ibw"):
        for channel in (0, 1):
            image = read_movie(REAL / name)[channel].data[0]
            rows = np.median(np.abs(np.diff(np.median(image, axis=1), 2)))
            columns = np.median(np.abs(np.diff(np.median(image, axis=0), 2)))
            assert rows > columns, (name, channel)


def test_stem_files_and_false_colour_render():
    (dm,) = read_movie(REAL / "stem/DMReader_Image_SI-Survey.dm3")
    assert dm.data.shape == (1, 512, 512) and dm.units[1] == "pixel"
    (re48,) = read_movie(REAL / "stem/re48.tiff")
    assert re48.data.shape == (1, 687, 772)
    assert "false-colour" in re48.metadata["notes"][0]
    assert float(re48.data.min()) == 0.0 and float(re48.data.max()) == 1.0
    (re05,) = read_movie(REAL / "stem/re05.tiff")
    assert "grey" in re05.metadata["notes"][0]


def test_noisy_bifeo3_phase_is_not_covered_in_walls():
    movies = read_movie(REAL / "pfm/IgorIBWReader_ImageStack_BTFO_DSO.ibw")
    phase = movies[find_channel(movies, "phase")]
    result = analyse_walls(phase.data, unit="deg", pixel_size_nm=phase.pixel_size_nm)
    row = result.report.iloc[0]
    assert row["wall_fraction"] <= 0.02 or row["note"]
    assert not row["contrast"] and "no domain contrast" in row["note"]


@pytest.mark.parametrize("name", ["pfm/PZT_thick0004.h5", "pfm/PTO_Funakubo0001.h5", "pfm/IgorIBWReader_P0089OP0027.ibw"])
def test_clean_pfm_scans_keep_their_domains(name):
    movies = read_movie(REAL / name)
    phase = movies[find_channel(movies, "phase")]
    result = analyse_walls(phase.data, unit="deg", pixel_size_nm=phase.pixel_size_nm)
    row = result.report.iloc[0]
    assert row["contrast"] and row["reliable_fraction"] > 0.9
    assert 0.01 < row["switched_fraction"] < 0.3 and row["wall_fraction"] < 0.08


def test_cli_sequence_of_real_scans_with_walls(tmp_path, capsys):
    out = tmp_path / "walls.csv"
    code = main(["detect", str(REAL / "pfm/PTO_Funakubo0001.h5"), str(REAL / "pfm/PTO_Funakubo0003.h5"),
                 "--walls", "-o", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "PhaseRetrace: 2 frame(s)" in text and "frame 1: switched" in text
    import pandas as pd

    sites = pd.read_csv(out)
    assert {"y_nm", "x_nm", "switched_fraction", "reliable_fraction"} <= set(sites.columns)
    assert sites["x_nm"].max() <= 1005.0

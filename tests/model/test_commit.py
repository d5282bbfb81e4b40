"""Outputs all or nothing (model/commit.py): one helper for mapping and evaluation."""

import os
import subprocess
import sys
import textwrap

import pytest

from model.commit import OutputCommit, clean_stale_runs, scratch_root
from model.errors import CancelledError, InputDataError
from model.grid import RasterInput
from model.pipeline import MappingRequest, map_landslides
from tests.helpers.scenes import make_event_scene

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def test_outputs_appear_together_only_at_commit(tmp_path):
    a, b = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    with OutputCommit([("first output", a), ("second output", b)], str(tmp_path)) as outputs:
        write(outputs.partial_path(a), "A")
        write(outputs.partial_path(b), "B")
        assert not os.path.exists(a) and not os.path.exists(b)
        assert sorted(outputs.commit()) == [a, b]
    assert open(a).read() == "A" and open(b).read() == "B"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]  # no partial, no scratch folder left


def test_failure_and_cancel_leave_nothing(tmp_path):
    a = str(tmp_path / "a.txt")
    with pytest.raises(RuntimeError):
        with OutputCommit([("output", a)], str(tmp_path)) as outputs:
            write(outputs.partial_path(a), "A")
            write(outputs.scratch_path("scratch.tif"), "x")
            raise RuntimeError("failed")
    assert os.listdir(tmp_path) == []
    with pytest.raises(CancelledError, match="Cancelled"):
        with OutputCommit([("output", a)], str(tmp_path), is_cancelled=lambda: True) as outputs:
            write(outputs.partial_path(a), "A")
            outputs.commit()
    assert os.listdir(tmp_path) == []


def test_second_run_on_the_same_output_is_refused_while_the_first_runs(tmp_path):
    a = str(tmp_path / "a.txt")
    with OutputCommit([("landslide mask", a)], str(tmp_path / "w1")) as first:
        with pytest.raises(InputDataError, match=r"Another run is writing the landslide mask .*a\.txt: wait"):
            with OutputCommit([("landslide mask", os.path.join(str(tmp_path), ".", "a.txt"))], str(tmp_path / "w2")):
                pass
        write(first.partial_path(a), "first")
        first.commit()
    with OutputCommit([("landslide mask", a)], str(tmp_path / "w2")) as second:  # the last run wins, whole
        write(second.partial_path(a), "second")
        second.commit()
    assert open(a).read() == "second"


def test_missing_or_unwritable_output_folders_are_named(tmp_path):
    with pytest.raises(InputDataError, match="The folder of the confusion raster does not exist: .*nowhere"):
        OutputCommit([("confusion raster", str(tmp_path / "nowhere" / "c.tif"))]).__enter__()
    with pytest.raises(InputDataError, match="The evaluation report .* is a folder"):
        OutputCommit([("evaluation report", str(tmp_path))]).__enter__()
    with pytest.raises(InputDataError, match="The landslide mask cannot be written to /proc"):
        OutputCommit([("landslide mask", "/proc/mask.tif")]).__enter__()
    with pytest.raises(InputDataError, match="Two outputs of this run are the same file"):
        OutputCommit([("a", str(tmp_path / "x.tif")), ("b", str(tmp_path / "x.tif"))]).__enter__()


KILLED_RUN = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    from model.commit import OutputCommit
    a, b, work, stage = sys.argv[1:5]
    outputs = OutputCommit([("a", a), ("b", b)], work).__enter__()
    with open(outputs.scratch_path("big_scratch.tif"), "w") as handle:
        handle.write("x" * 1000)
    for path in (a, b):
        with open(outputs.partial_path(path), "w") as handle:
            handle.write("new " + path)
    if stage == "renaming":  # killed between the two renames
        real_replace = os.replace
        def replace_then_die(source, target):
            real_replace(source, target)
            if source.endswith(".partial"):
                os._exit(9)
        os.replace = replace_then_die
        outputs.commit()
    os._exit(9)  # killed before the commit: no clean-up runs
""")


@pytest.mark.parametrize("stage", ["writing", "renaming"])
def test_a_later_run_cleans_what_a_killed_run_left(tmp_path, stage):
    a, b, work = str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), str(tmp_path / "work")
    write(a, "old a")
    write(b, "old b")
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RUN.format(repo=REPO))
    assert subprocess.run([sys.executable, str(script), a, b, work, stage]).returncode == 9
    root = scratch_root(work)

    def folders():
        return [name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name))]

    assert len(folders()) == 1 and len(os.listdir(root)) == 2  # the dead run's scratch folder and its lock file
    if stage == "writing":
        assert os.path.exists(a + ".partial") and os.path.exists(b + ".partial")
    else:
        assert open(a).read() == "new " + a and open(b).read() == "old b"  # half renamed
    with OutputCommit([("other output", str(tmp_path / "c.txt"))], work):
        assert len(folders()) == 1 and len(os.listdir(root)) == 2  # only this run's folder and lock file
    assert not os.path.exists(root)
    assert not os.path.exists(a + ".partial") and not os.path.exists(b + ".partial")
    if stage == "writing":  # rolled back: the old outputs stay, whole
        assert (open(a).read(), open(b).read()) == ("old a", "old b")
    else:  # rolled forward: the dead run had finished every output
        assert (open(a).read(), open(b).read()) == ("new " + a, "new " + b)


def test_a_scratch_folder_without_lock_is_removed_only_when_old(tmp_path):
    root = scratch_root(str(tmp_path))
    young, old = os.path.join(root, "run_young"), os.path.join(root, "run_old")
    os.makedirs(young)
    os.makedirs(old)
    os.utime(old, (0, 0))
    assert clean_stale_runs(root) == [old]
    assert os.listdir(root) == ["run_young"]


def test_a_live_run_is_never_cleaned(tmp_path):
    work = str(tmp_path / "work")
    a = str(tmp_path / "a.txt")
    with OutputCommit([("a", a)], work) as live:
        write(live.partial_path(a), "A")
        assert clean_stale_runs(scratch_root(work)) == []
        assert os.path.exists(a + ".partial") and os.path.isdir(live.dir)


def test_mapping_refuses_a_missing_output_folder_before_inference(tmp_path, red_model):
    scene = make_event_scene(str(tmp_path / "scene"))
    progress = []
    request = MappingRequest(red_model, RasterInput(scene.pre, (1, 2, 3)), RasterInput(scene.post, (1, 2, 3)),
                             RasterInput(scene.dem), mask_path=str(tmp_path / "mask.tif"),
                             polygons_path=str(tmp_path / "missing" / "landslides.gpkg"), work_dir=str(tmp_path))
    with pytest.raises(InputDataError, match="The folder of the landslide polygons does not exist"):
        map_landslides(request, progress=progress.append)
    assert progress == []  # not one window ran
    assert sorted(os.listdir(tmp_path)) == ["red_difference.onnx", "scene"]


def test_mapping_writes_the_polygon_geopackage_with_the_rasters(tmp_path, red_model):
    from osgeo import ogr

    scene = make_event_scene(str(tmp_path / "scene"))
    out = tmp_path / "out"
    out.mkdir()
    result = map_landslides(MappingRequest(
        red_model, RasterInput(scene.pre, (1, 2, 3)), RasterInput(scene.post, (1, 2, 3)), RasterInput(scene.dem),
        mask_path=str(out / "mask.tif"), polygons_path=str(out / "landslides.gpkg"), work_dir=str(tmp_path)))
    assert sorted(os.listdir(out)) == ["landslides.gpkg", "mask.tif"]
    assert result.polygons == [] and result.polygons_path == str(out / "landslides.gpkg")
    source = ogr.Open(result.polygons_path)
    layer = source.GetLayer(0)
    assert layer.GetName() == "landslides"
    assert sorted(f.GetField("area_m2") for f in layer) == sorted(100.0 * h * w for _, _, h, w in scene.slides)


KILLED_MAPPING = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    from model.grid import RasterInput
    from model.pipeline import MappingRequest, map_landslides
    pre, post, dem, model, out, work = sys.argv[1:7]
    real_replace = os.replace
    def replace_then_die(source, target):
        real_replace(source, target)
        if source.endswith(".partial"):
            os._exit(9)  # killed right after the first output got its name
    os.replace = replace_then_die
    map_landslides(MappingRequest(model, RasterInput(pre, (1, 2, 3)), RasterInput(post, (1, 2, 3)), RasterInput(dem),
                                  probability_path=os.path.join(out, "probability.tif"),
                                  mask_path=os.path.join(out, "mask.tif"),
                                  polygons_path=os.path.join(out, "landslides.gpkg"), work_dir=work))
""")


def test_a_mapping_killed_during_its_renames_is_completed_by_the_next_run(tmp_path, red_model):
    from osgeo import gdal, ogr

    scene = make_event_scene(str(tmp_path / "scene"))
    out, work = tmp_path / "out", str(tmp_path / "work")
    out.mkdir()
    script = tmp_path / "killed_mapping.py"
    script.write_text(KILLED_MAPPING.format(repo=REPO))
    done = subprocess.run([sys.executable, str(script), scene.pre, scene.post, scene.dem, red_model, str(out), work])
    assert done.returncode == 9
    assert len([name for name in os.listdir(out) if not name.endswith(".partial")]) == 1  # one output renamed
    with OutputCommit([("another output", str(tmp_path / "other.tif"))], work):
        pass  # any later run settles what the killed one left
    assert sorted(os.listdir(out)) == ["landslides.gpkg", "mask.tif", "probability.tif"]
    assert (gdal.Open(str(out / "mask.tif")).ReadAsArray() == scene.expected_mask()).all()
    source = ogr.Open(str(out / "landslides.gpkg"))
    assert source.GetLayer(0).GetFeatureCount() == len(scene.slides)


def test_a_rename_that_fails_half_way_is_completed_by_the_next_run(tmp_path, monkeypatch):
    from model import commit

    a, b = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    write(a, "old a")
    write(b, "old b")
    real_replace = os.replace
    calls = []

    def replace_failing_on_b(source, target):
        if source == b + ".partial" and not calls:
            calls.append(source)
            raise PermissionError(13, "Permission denied")  # e.g. open in another program on Windows
        real_replace(source, target)

    monkeypatch.setattr(commit.os, "replace", replace_failing_on_b)
    with pytest.raises(InputDataError, match="Cannot give .*b.txt its name.*The next run completes the outputs"):
        with OutputCommit([("a", a), ("b", b)], str(tmp_path)) as outputs:
            write(outputs.partial_path(a), "new a")
            write(outputs.partial_path(b), "new b")
            outputs.commit()
    assert (open(a).read(), open(b).read()) == ("new a", "old b")
    with OutputCommit([("c", str(tmp_path / "c.txt"))], str(tmp_path)):
        pass
    assert (open(a).read(), open(b).read()) == ("new a", "new b")
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]


def test_lock_files_do_not_pile_up_and_a_removed_lock_file_is_taken_afresh(tmp_path):
    from model.commit import FileLock, destination_lock

    for index in range(5):
        with OutputCommit([("output", str(tmp_path / f"out{index}.txt"))], str(tmp_path / "work")) as outputs:
            write(outputs.partial_path(str(tmp_path / f"out{index}.txt")), "x")
            outputs.commit()
        assert not os.path.exists(destination_lock(str(tmp_path / f"out{index}.txt")).path)
    path = str(tmp_path / "a.lock")
    first, second = FileLock(path), FileLock(path)
    assert first.acquire()
    assert not second.acquire()
    first.release(remove=True)  # removed by its holder: the next one locks a fresh file
    assert second.acquire() and os.path.exists(path)
    third = FileLock(path)
    assert not third.acquire()
    second.release()


def test_a_lock_on_a_file_its_holder_removed_is_not_taken_for_the_lock(tmp_path):
    from model.commit import FileLock

    path = str(tmp_path / "b.lock")
    lock = FileLock(path)
    stale = open(path, "a+b")  # opened just before the holder removed it
    os.remove(path)
    open(path, "a+b").close()  # the lock file a later run created
    assert not lock._still_named(stale)
    stale.close()
    fresh = open(path, "a+b")
    assert lock._still_named(fresh)
    fresh.close()

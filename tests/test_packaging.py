"""Packaging as PyPI and the napari hub see it: dependencies declared exactly as imported, one manifest
with menus, licence and URLs, a README that renders without the repository, the public Python API."""

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "napari_rvae"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# imported only as an alternative to a declared package (pyarrow), never required
OPTIONAL_FALLBACKS = {"fastparquet"}
# declared but used through another package, not imported: tifffile's codecs for compressed TIFF
USED_INDIRECTLY = {"imagecodecs"}


def _imported_top_level_modules() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"napari_rvae", "__future__"}


def _declared(*extras: str) -> set[str]:
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return {Requirement(r).name.lower().replace("_", "-") for r in requirements}


def test_dependencies_are_declared_exactly_as_imported():
    distributions = packages_distributions()
    imported = set()
    for module in _imported_top_level_modules() - OPTIONAL_FALLBACKS:
        names = distributions.get(module)
        assert names, f"{module} is imported but no installed distribution provides it"
        imported.add(names[0].lower().replace("_", "-"))
    declared = _declared("io", "onnx", "dask")
    assert imported - declared == set(), "imported but not declared"
    assert declared - imported - USED_INDIRECTLY == set(), "declared but never imported"
    # a Qt binding and the test tools never are hard dependencies
    hard = _declared()
    assert not hard & {"pyqt5", "pyqt6", "pyside2", "pyside6", "pytest", "hypothesis", "magicgui", "npe2"}


def test_extras_split_user_and_test_needs():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"io", "qt", "dask", "testing", "all"} <= set(extras)
    assert any(Requirement(r).name == "napari" and "pyqt6" in Requirement(r).extras for r in extras["qt"])
    user = _declared("io", "qt", "all")
    assert not user & {"pytest", "hypothesis", "pytest-qt", "nbclient"}  # users do not get the test tools
    assert {"pytest", "nbclient", "ipykernel"} <= _declared("testing")


def test_one_manifest_inside_the_package_with_menus_for_every_dock():
    from npe2 import PluginManifest

    copies = [p for p in ROOT.rglob("napari.yaml") if ".venv" not in p.parts and "build" not in p.parts]
    assert copies == [PACKAGE / "napari.yaml"] and not copies[0].is_symlink()
    manifest = PluginManifest.from_file(PACKAGE / "napari.yaml")
    docks = {w.command for w in manifest.contributions.widgets}
    in_menus = {item.command for items in manifest.contributions.menus.values() for item in items}
    assert docks <= in_menus, f"docks missing from napari's menus: {docks - in_menus}"
    from napari._app_model.constants._menus import is_menu_contributable

    assert all(is_menu_contributable(menu) for menu in manifest.contributions.menus)
    readers = {r.command for r in manifest.contributions.readers}
    assert "napari-rvae.get_sites_reader" in readers
    (writer,) = [w for w in manifest.contributions.writers if w.command == "napari-rvae.write_sites"]
    assert set(writer.filename_extensions) == {".csv", ".parquet"}


def test_metadata_for_pypi_and_the_napari_hub():
    project = PYPROJECT["project"]
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert project["license"] == {"text": "BSD-3-Clause"}
    classifiers = set(project["classifiers"])
    assert {"Framework :: napari", "License :: OSI Approved :: BSD License",
            "Programming Language :: Python :: 3.11"} <= classifiers
    urls = project["urls"]
    assert urls and all(u.startswith("https://") and "example" not in u and "<" not in u for u in urls.values())


def test_readme_renders_on_pypi_without_the_repository():
    """PyPI and the napari hub show the README alone: no image or link may point into the repository."""
    import re

    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)", text) + re.findall(r"<img[^>]+src=\"([^\"]+)\"", text)
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert relative == []
    assert "download.pytorch.org/whl/cpu" in text and "napari[all]" in text


def test_import_napari_rvae_imports_neither_torch_nor_qt():
    code = ("import sys, napari_rvae\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari', 'pyqtgraph'))\n"
            "print(heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_public_api_resolves_and_is_documented():
    import napari_rvae
    import napari_rvae.io

    api_doc = (ROOT / "docs" / "api.md").read_text()
    for name in napari_rvae.__all__:
        value = getattr(napari_rvae, name)
        if name != "__version__":
            assert value.__doc__, f"napari_rvae.{name} has no docstring"
            assert f"`{name}" in api_doc, f"docs/api.md does not document {name}"
    from napari_rvae.io.movie import read_movie

    assert napari_rvae.read_movie is read_movie is napari_rvae.io.read_movie
    with pytest.raises(AttributeError):
        napari_rvae.not_a_verb  # noqa: B018


def test_train_is_reproducible_and_keeps_the_windows_normalisation():
    import numpy as np

    import napari_rvae as nr
    from napari_rvae.io.sites import make_sites

    rng = np.random.default_rng(0)
    movie = rng.normal(size=(2, 48, 48)).astype(np.float32)
    yy, xx = np.meshgrid(np.arange(8, 40, 6.0), np.arange(8, 40, 6.0), indexing="ij")
    sites = make_sites(np.repeat([0, 1], yy.size), np.tile(yy.ravel(), 2), np.tile(xx.ravel(), 2))
    cut = nr.cut_windows(movie, sites, 12, normalisation="global")
    first = nr.train(cut, arch="rvae", latent=1, epochs=2, batch_size=16, seed=3, device="cpu")
    again = nr.train(cut.windows, arch="rvae", latent=1, epochs=2, batch_size=16, seed=3, device="cpu",
                     normalisation=cut.normalisation)
    assert len(first.history) == 2 and first.normalisation == cut.normalisation == again.normalisation
    np.testing.assert_array_equal(nr.encode(first, cut.windows).to_numpy(), nr.encode(again, cut.windows).to_numpy())
    with pytest.raises(ValueError, match="at least two windows"):
        nr.train(cut.windows[:1])


def test_autosave_lives_in_the_platform_user_data_folder(monkeypatch, tmp_path):
    import platformdirs

    from napari_rvae.io.files import user_data_folder

    monkeypatch.setattr(platformdirs, "user_data_path", lambda name, appauthor=None: tmp_path / name)
    assert user_data_folder("labels") == tmp_path / "napari-rvae" / "labels"
    assert not (tmp_path / "napari-rvae").exists()  # naming the folder creates nothing


def test_training_leaves_torchs_thread_count_as_it_found_it():
    """A notebook's own torch setting survives a training run (threads are set per epoch only)."""
    import numpy as np
    import torch

    import napari_rvae as nr

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        model = nr.build_model(nr.VAEConfig(arch="rvae", window=(8, 8), latent=1), seed=0)
        trainer = nr.Trainer(model, np.random.default_rng(0).random((40, 8, 8), dtype=np.float32), threads=1,
                             batch_size=20, device="cpu")
        assert torch.get_num_threads() == 2  # building the trainer changes nothing
        original = trainer._epoch_on_device
        trainer._epoch_on_device = lambda epoch: (seen.append(torch.get_num_threads()), original(epoch))[1]
        trainer.fit(2)
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_bench_outside_a_checkout_says_where_it_runs(tmp_path):
    """Installed from a wheel (no benchmarks/ beside the package), `bench` answers with one clear line."""
    import shutil

    site = tmp_path / "lib" / "site-packages"
    shutil.copytree(PACKAGE, site / "napari_rvae", ignore=shutil.ignore_patterns("weights", "__pycache__"))
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "napari_rvae.cli", "bench", "-o", str(tmp_path / "b.json"), "--quick"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "source checkout" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b.json").exists()


def test_benchmark_code_imports_the_package_by_name():
    """The benchmarks live outside the package: an import relative to the package (``from .._samples``)
    fails only when the benchmark runs, so none may be left in benchmarks/."""
    import ast

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    wrong = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            target = base.joinpath(*(node.module or "").split(".")) if node.module else base
            inside = base == root or root in base.parents
            if not inside or not (target.with_suffix(".py").exists() or (target / "__init__.py").exists()):
                wrong.append(f"{path.relative_to(root.parent)}:{node.lineno} from {'.' * node.level}{node.module or ''}")
    assert not wrong, wrong

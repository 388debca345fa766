"""Offline check of a built wheel as PyPI and the napari hub read it (what `npe2 fetch` does online).

    python .ci/wheel_check.py dist/napari_rvae-*.whl

Reads the manifest and the package metadata from the wheel file itself with npe2, and checks the
wheel's contents: one napari.yaml, the licence, the shipped model and samples, no tests, no
benchmark or maintainer code. Exits non-zero with one line per problem.
"""

import re
import sys
import zipfile

from npe2 import get_manifest_from_wheel


def main(wheel: str) -> int:
    problems = []
    names = zipfile.ZipFile(wheel).namelist()
    manifests = [n for n in names if n.endswith("napari.yaml")]
    if manifests != ["napari_rvae/napari.yaml"]:
        problems.append(f"expected exactly napari_rvae/napari.yaml, found {manifests}")
    for forbidden in ("tests/", "benchmarks/", "scripts/", "bench.py", "/benchmark.py", "validate_chemistry", "atomai_inference"):
        hits = [n for n in names if forbidden in n]
        if hits:
            problems.append(f"{forbidden} shipped: {hits[:3]}")
    for needed in ("licenses/LICENSE", "napari_rvae/segment/weights/", "napari_rvae/sample_data/"):
        if not any(needed in n for n in names):
            problems.append(f"missing {needed}")

    manifest = get_manifest_from_wheel(wheel)
    meta = manifest.package_metadata
    if manifest.name != "napari-rvae" or not manifest.contributions.widgets or not manifest.contributions.menus:
        problems.append("manifest lacks widgets or menus")
    if meta is None:
        problems.append("no package metadata")
    else:
        if meta.license != "BSD-3-Clause":
            problems.append(f"licence {meta.license!r}")
        if "Framework :: napari" not in (meta.classifier or []):
            problems.append("no 'Framework :: napari' classifier (the hub lists plugins by it)")
        if not meta.project_url or not all(u.split(", ", 1)[-1].startswith("https://") for u in meta.project_url):
            problems.append(f"project URLs {meta.project_url}")
        if not meta.summary or not meta.description or meta.description_content_type != "text/markdown":
            problems.append("summary or markdown description missing")
        else:
            targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)", meta.description)
            relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
            if relative:
                problems.append(f"README links that break on PyPI / the hub: {relative}")
        if not meta.requires_python:
            problems.append("no Requires-Python")
    for problem in problems:
        print(f"wheel check: {problem}", file=sys.stderr)
    print(f"wheel check: {wheel}: {len(names)} files, {len(manifest.contributions.commands or [])} commands, "
          f"{'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

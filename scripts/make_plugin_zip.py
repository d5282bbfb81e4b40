"""Build dist/landslide_mapper-<version>.zip, installable with QGIS's "Install from ZIP".

Usage: python3 scripts/make_plugin_zip.py [--output DIR]
Contains what the plugin runs, and the training package's Python sources (not its checkpoints), which
"Adapt model to event" runs in a separate Python with TensorFlow (never inside QGIS); no tests or benchmarks.
"""

import argparse
import configparser
import os
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_NAME = "landslide_mapper"
INCLUDE = ["metadata.txt", "__init__.py", "plugin.py", "deps.py", "install_dialog.py", "LICENSE", "README.md", "algorithms", "model", "resources",
           "training"]
SKIP_PARTS = {"__pycache__", ".pytest_cache", "checkpoints"}
SKIP_SUFFIXES = (".pyc", ".partial")


def plugin_files():
    """Repository-relative paths of every file that goes into the zip."""
    for entry in INCLUDE:
        path = os.path.join(REPO, entry)
        if os.path.isfile(path):
            yield entry
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_PARTS)
            for name in sorted(files):
                if not name.endswith(SKIP_SUFFIXES):
                    yield os.path.relpath(os.path.join(root, name), REPO)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(REPO, "dist"), help="folder for the zip")
    args = parser.parse_args()
    meta = configparser.ConfigParser()
    meta.read(os.path.join(REPO, "metadata.txt"))
    version = meta["general"]["version"]
    os.makedirs(args.output, exist_ok=True)
    target = os.path.join(args.output, f"{PLUGIN_NAME}-{version}.zip")
    with zipfile.ZipFile(target + ".partial", "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in plugin_files():
            archive.write(os.path.join(REPO, relative), f"{PLUGIN_NAME}/{relative}")
    os.replace(target + ".partial", target)
    print(target)


if __name__ == "__main__":
    main()

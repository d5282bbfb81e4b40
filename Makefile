# Convenience targets; each is one command you can also run by hand.
PY ?= .venv/bin/python

.PHONY: setup test zip install benchmark

setup:            ## Fresh Debian 12: QGIS, GDAL and the venv
	bash scripts/setup_debian.sh training

test:             ## Set up and run every test (the README's test command)
	bash scripts/test.sh

zip:              ## dist/landslide_mapper-<version>.zip for QGIS "Install from ZIP"
	python3 scripts/make_plugin_zip.py

install: zip      ## Unpack the plugin into the default QGIS profile
	mkdir -p "$(HOME)/.local/share/QGIS/QGIS3/profiles/default/python/plugins"
	python3 -c "import zipfile,glob,os; z=sorted(glob.glob('dist/landslide_mapper-*.zip'))[-1]; zipfile.ZipFile(z).extractall(os.path.expanduser('~/.local/share/QGIS/QGIS3/profiles/default/python/plugins'))"

benchmark:        ## Streaming engine vs the notebook's tiling (writes benchmarks/results/)
	$(PY) benchmarks/bench_inference.py

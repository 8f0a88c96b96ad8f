#!/usr/bin/env bash
# Download the manylinux wheels (CPython 3.12, x86-64) that the GPU device image lacks into .whl/ (ignored
# by git, carried by the device call), at the versions installed in .venv, then check their dependency
# closure against the device image's package list and the size of what a call carries.
#
# The device image (kind nvidia-h200, package list read 2026-11-17) already holds torch, numpy, scipy,
# pandas, xarray, scikit-image, pillow, safetensors, click, tqdm, psutil, pyyaml, toolz, cloudpickle,
# fsspec, jinja2, msgpack, sortedcontainers, attrs, certifi, packaging ... (DEVICE_HAS below). What the
# device job (scripts/gpu_e2e.sh) imports beyond that: rasterio and its small helpers, dask (the tiling
# runner) and distributed (`--workers` for the Lee row). Not carried: rioxarray/pyproj, geopandas/shapely/
# pyogrio, PyWavelets (vector I/O, the xarray accessors and wavelet fusion are not part of the job).
#
# Usage: scripts/device_wheels.sh            (from the repository root; needs PyPI)
#        LIMIT_MIB=60 scripts/device_wheels.sh   fail when a call would carry more than this
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LIMIT_MIB=${LIMIT_MIB:-60}  # the device tool's hard limit is 64 MiB per call (tree + carried paths)
WANT=(rasterio affine cligj click-plugins dask partd locket distributed tornado tblib zict)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
  manylinux1_x86_64)

for line in /.whl/ /.device/; do
  grep -qxF "$line" .git/info/exclude 2>/dev/null || echo "$line" >>.git/info/exclude
done
rm -rf .whl && mkdir -p .whl
plat=(); for p in "${PLATFORMS[@]}"; do plat+=(--platform "$p"); done
for name in "${WANT[@]}"; do
  version=$($PY -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d .whl "$name==$version" 2>&1 | { grep -v "WARNING: Location" || true; }
done

# every requirement of every wheel (markers evaluated for CPython 3.12 on Linux) must be carried or on
# the device; exactly one version of each carried package
$PY - "${WANT[@]}" <<'EOF'
import re, sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement

DEVICE_HAS = set("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch
mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml
regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn
sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels
sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
xarray xxhash yarl zipp
""".split())
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
wheels = sorted(Path(".whl").glob("*.whl"))
carried = [norm(w.name.split("-")[0]) for w in wheels]
dupes = {n for n in carried if carried.count(n) > 1}
missing = {}
for w in wheels:
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            n = norm(req.name)
            if n not in DEVICE_HAS and n not in carried:
                missing.setdefault(n, []).append(w.name.split("-")[0])
wanted = {norm(n) for n in sys.argv[1:]}
if dupes or missing or wanted - set(carried):
    sys.exit(f"wheel set incomplete: duplicates {sorted(dupes)}, needed but not carried {missing}, "
             f"not downloaded {sorted(wanted - set(carried))}")
print(f"{len(wheels)} wheels; every requirement is carried or on the device image")
EOF

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
tree=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null || true) \
  | awk '{s += $1} END {print s + 0}')
whl=$(du -sb .whl | cut -f1)
dev=$( [[ -d .device ]] && du -sb .device | cut -f1 || echo 0)
echo "wheels:"; ls -l .whl | awk 'NR > 1 {printf "  %-70s %6.1f MiB\n", $9, $5 / 1048576}'
echo "working tree $(mib "$tree") MiB, .whl $(mib "$whl") MiB, .device $(mib "$dev") MiB"
status=0
for call in "e2e:$((tree + whl))" "priors:$((tree + dev))" "both:$((tree + whl + dev))"; do
  name=${call%%:*}; bytes=${call#*:}
  verdict=ok; (( bytes > LIMIT_MIB * 1048576 )) && verdict="OVER ${LIMIT_MIB} MiB"
  echo "  call STAGES=$name carries $(mib "$bytes") MiB: $verdict"
  [[ $name != both && $verdict != ok ]] && status=1
done
exit $status

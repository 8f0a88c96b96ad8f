#!/usr/bin/env bash
# Package or install the QGIS plugin (qgis_plugin/, installed as the plugin folder "geodiff_qgis").
#
#   scripts/qgis_plugin.sh zip OUT.zip            # the zip for Plugins > Manage and Install > Install from ZIP
#   scripts/qgis_plugin.sh screenshot OUT.png     # the Despeckle dialog in real QGIS under Xvfb (docs/)
#   scripts/qgis_plugin.sh install PROFILE_DIR    # copy into a QGIS profile and enable it, e.g.
#       ~/.local/share/QGIS/QGIS3/profiles/default   (Linux)
#       ~/Library/Application Support/QGIS/QGIS3/profiles/default   (macOS)
#       %APPDATA%\QGIS\QGIS3\profiles\default   (Windows, from Git Bash)
#
# The plugin runs the `geodiff` executable; set its path in QGIS under Settings > Options > Processing >
# Providers > geodiff (default: $GEODIFF_EXECUTABLE, else `geodiff` on PATH).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=geodiff_qgis
PY=${PYTHON:-python3}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

case "${1:-}" in
  zip)
    [ $# -eq 2 ] || usage
    "$PY" - "$ROOT/qgis_plugin" "$2" "$NAME" <<'EOF'
import sys, zipfile
from pathlib import Path

src, out, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
files = sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
out.parent.mkdir(parents=True, exist_ok=True)
tmp = out.with_name(f".{out.name}.part")
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for p in files:
        z.write(p, f"{name}/{p.relative_to(src).as_posix()}")
tmp.replace(out)
print(f"{out}: {len(files)} files in {name}/")
EOF
    ;;
  install)
    [ $# -eq 2 ] || usage
    PROFILE=$2
    DEST="$PROFILE/python/plugins/$NAME"
    mkdir -p "$PROFILE/python/plugins" "$PROFILE/QGIS"
    rm -rf "$DEST"
    mkdir "$DEST"
    (cd "$ROOT/qgis_plugin" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - .) | (cd "$DEST" && tar -xf -)
    # Enable it: [PythonPlugins] geodiff_qgis=true in the profile's QGIS3.ini (other lines kept as they are).
    "$PY" - "$PROFILE/QGIS/QGIS3.ini" "$NAME" <<'EOF'
import sys
from pathlib import Path

ini, name = Path(sys.argv[1]), sys.argv[2]
lines = ini.read_text().splitlines() if ini.exists() else []
key = f"{name}=true"
lines = [l for l in lines if not l.startswith(f"{name}=")]
if "[PythonPlugins]" in lines:
    lines.insert(lines.index("[PythonPlugins]") + 1, key)
else:
    lines += (["", "[PythonPlugins]"] if lines else ["[PythonPlugins]"]) + [key]
ini.write_text("\n".join(lines) + "\n")
EOF
    echo "$DEST: installed and enabled (restart QGIS; Processing Toolbox > geodiff)"
    ;;
  screenshot)
    [ $# -eq 2 ] || usage
    OUT=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    HOME_DIR=$(mktemp -d)
    trap 'rm -rf "$HOME_DIR"' EXIT
    "$0" install "$HOME_DIR/.local/share/QGIS/QGIS3/profiles/default" >/dev/null
    HOME="$HOME_DIR" SHOT_OUT="$OUT" SHOT_SCENE="$ROOT/geodiff/data/sample_s1_vv_gamma0.tif" \
      timeout 180 xvfb-run -a -s "-screen 0 1400x1000x24" \
      qgis --nologo --noversioncheck --code "$ROOT/scripts/qgis_dialog_screenshot.py" >/dev/null 2>&1 || true
    [ -s "$OUT" ] || { echo "no screenshot written (needs qgis and xvfb)" >&2; exit 1; }
    echo "$OUT"
    ;;
  *) usage ;;
esac

#!/bin/sh
# Regenerate docs/screenshots from a fresh quadruped run, as CI can:
#   apt-get install -y chromium default-jre nodejs npm libegl1 libegl-mesa0 libgl1-mesa-dri
#   sh docs/screenshots/shoot.sh [WORK_DIR]
# Runs the quadruped scenarios for quadruped-nominal and quadruped-robust (a few minutes on two
# cores), builds the Allure 2 report with `python -m simgate report`, and photographs it with
# headless Chromium through puppeteer-core (installed into WORK_DIR, outside the repository).
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
python=${PYTHON:-$repo/.venv/bin/python}
mkdir -p "$work/scenarios"
cp "$repo"/scenarios/quadruped_*.yaml "$work/scenarios/"
rm -rf "$work/allure-results"
cd "$repo"
"$python" -m pytest suites/ -n 2 -p no:cacheprovider --scenarios "$work/scenarios" \
  --policy quadruped-nominal --policy quadruped-robust \
  --alluredir "$work/allure-results" --simgate-reports "$work/reports" -q || true  # FAIL exits 1
"$python" -m simgate report --results "$work/allure-results" --out "$work/allure-report" --tools "$work/allure-tools"
[ -d "$work/node/node_modules/puppeteer-core" ] || npm install --prefix "$work/node" --no-audit --no-fund puppeteer-core
NODE_PATH="$work/node/node_modules" node "$repo/docs/screenshots/shoot.js" "$work/allure-report" "$repo/docs/screenshots" \
  | tee "$work/shots.log"
# a shot over 500 KB (the rendered robot and video frames) has each channel rounded to a multiple
# of 4 (at most 2/255 off: it looks the same, pale backgrounds included), and only if that is
# still over 500 KB is it kept to 256 colours, with Pillow and numpy
tail -n 1 "$work/shots.log" | "$python" -c '
import json, os, sys
try:
    import numpy as np
    from PIL import Image
except ImportError:
    print("Pillow or numpy not installed: the screenshots are left as taken", file=sys.stderr); sys.exit(0)
for path in json.loads(sys.stdin.read())["shots"]:
    if os.path.getsize(path) > 500_000:
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
        Image.fromarray(np.clip((rgb + 2) >> 2 << 2, 0, 255).astype(np.uint8)).save(path, optimize=True)
    if os.path.getsize(path) > 500_000:
        Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    print(f"{os.path.getsize(path):>8} {path}")
'

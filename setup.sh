#!/usr/bin/env bash
# Set up dmask on a fresh Linux machine (no GPU needed) and mask the bundled demo clip.
#   bash setup.sh            # install + run the demo (writes ./demo/)
#   bash setup.sh --no-demo  # install only
set -euo pipefail
cd "$(dirname "$0")"

# System libraries: OpenGL through EGL (Mesa llvmpipe renders on the CPU when there is no GPU).
if ! ldconfig -p | grep -q 'libEGL.so.1' || ! ldconfig -p | grep -q 'libGL.so.1' \
   || ! ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# mediapipe 0.10.21 ships the face-mesh and iris models inside its wheel. Its metadata asks for
# numpy<2 and jax, which the face mesh does not use: install it alone; pyproject.toml lists what it needs.
.venv/bin/python -m pip install -q --no-deps "mediapipe==0.10.21"
.venv/bin/python -m pip install -q --no-deps "face_recognition==1.3.0"
.venv/bin/python -m pip install -q -e ".[test]"

if [ "${1:-}" != "--no-demo" ]; then
  .venv/bin/dmask demo --out demo
fi

#!/usr/bin/env bash
# Installs every Debian package tensorscape needs to build, test and run. Idempotent: packages already
# present are skipped, and apt is only touched when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  mesa-vulkan-drivers libvulkan-dev glslc vulkan-validationlayers vulkan-tools
  libimgui-dev libstb-dev libglfw3-dev libglm-dev libpng-dev zlib1g-dev
  libtorch-dev libopenblas0-pthread
  libgtest-dev libgmock-dev libbenchmark-dev
  libhdf5-dev
  xvfb xauth
  dataset-fashion-mnist
  python3-torch python3-torchvision python3-h5py python3-numpy
  nlohmann-json3-dev libcli11-dev
  pybind11-dev python3-dev libdeflate0
  clang libclang-rt-14-dev
  libopenmpi-dev openmpi-bin
  ffmpeg
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "tensorscape setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "tensorscape setup: all packages present"
fi

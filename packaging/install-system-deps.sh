#!/usr/bin/env bash
# System packages OsteoView needs beside its Python wheels: an X server for headless GUI tests
# (Xvfb), the libraries Qt 6's xcb platform and VTK's OpenGL (Mesa, software rendering) load,
# poppler-utils (pdftoppm/pdftotext) used by the report tests, Orthanc with its DICOMweb plugin
# (the PACS the tests start on loopback) and dicom3tools (dciodvfy, the conformance tests).
# As root on Debian/Ubuntu it installs them; otherwise it prints the apt line to run.
set -euo pipefail
PKGS=(xvfb xauth libgl1 libglx-mesa0 libegl1 libgl1-mesa-dri libglu1-mesa libxrender1 libxt6
      libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
      libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0
      libfontconfig1 libdbus-1-3 fonts-dejavu-core poppler-utils orthanc orthanc-dicomweb
      dicom3tools fonts-wqy-microhei)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "OsteoView needs these system packages; run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

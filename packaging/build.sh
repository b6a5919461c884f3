#!/usr/bin/env bash
# `make package`: the wheel, the self-contained bundle (PyInstaller one-folder) and the .deb, in
# build/package/out. The bundle is frozen from a venv holding the wheel and the runtime
# dependencies only (plus PyInstaller), never the development venv: nothing of training or
# testing (torch, MONAI, pytest) can get in. Needs only PyPI (pip) and dpkg-deb.
# Prints the figures the README quotes: runtime install time and size, bundle and .deb sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-python3.11}
PKG=$ROOT/build/package
VENV=$PKG/venv
OUT=$PKG/out
VERSION=$($PY -c 'import re; print(re.search(r"__version__ = \"(.+)\"", open("app/__init__.py").read())[1])')
HASH=$(sha1sum pyproject.toml | cut -c1-12)
mkdir -p "$OUT"
# pip's warnings about configured mirror folders that do not exist here are noise
exec 2> >(grep -v "^WARNING: Location '" >&2)

if [ ! -f "$VENV/.deps-$HASH" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi

echo "== wheel"
rm -f "$OUT"/osteoview-*.whl
"$VENV/bin/pip" wheel -q --no-deps -w "$OUT" .
WHEEL=$(ls "$OUT"/osteoview-"$VERSION"-*.whl)
echo "$WHEEL ($(du -h "$WHEEL" | cut -f1))"

echo "== runtime venv (the wheel, its dependencies and PyInstaller)"
if [ ! -f "$VENV/.deps-$HASH" ]; then
  t0=$(date +%s)
  "$VENV/bin/pip" install -q "$WHEEL"
  t1=$(date +%s)
  echo "runtime install: $((t1 - t0)) s, venv $(du -sm "$VENV" | cut -f1) MB" \
    "(pip install of the wheel into a fresh venv)" | tee "$PKG/runtime-install.txt"
  "$VENV/bin/pip" install -q "$WHEEL[package]"  # PyInstaller, after the measurement
  touch "$VENV/.deps-$HASH"
fi
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$WHEEL"  # this tree's code, every time

echo "== bundle (PyInstaller one-folder)"
rm -rf "$PKG/dist"
(cd "$PKG" && "$VENV/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$PKG/dist" \
  --workpath "$PKG/work" "$ROOT/packaging/osteoview.spec")
BUNDLE=$PKG/dist/osteoview
echo "$BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"

echo "== .deb"
"$VENV/bin/python" packaging/make_manpage.py "$PKG/osteoview.1" >/dev/null
rm -f "$OUT"/osteoview_*.deb
DEB=$(bash packaging/build_deb.sh "$BUNDLE" "$PKG/osteoview.1" "$OUT" "$VERSION")
echo "$DEB ($(du -h "$DEB" | cut -f1))"

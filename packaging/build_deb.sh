#!/usr/bin/env bash
# The .deb: the PyInstaller bundle under /opt/osteoview, /usr/bin/osteoview, the desktop entry
# ("Open with" for DICOM and NIfTI), the icon at every size, the NIfTI MIME type and the man page.
# dpkg-deb only (no debhelper). Desktop, MIME and icon caches are refreshed by the file triggers
# of desktop-file-utils, shared-mime-info and the icon theme, so no maintainer scripts.
#     packaging/build_deb.sh BUNDLE_DIR MANPAGE OUT_DIR VERSION
set -euo pipefail
BUNDLE=$1 MANPAGE=$2 OUT=$3 VERSION=$4
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT_DIR=$(cd "$HERE/.." && pwd)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/osteoview-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root

install -d "$R/opt" "$R/usr/bin" "$R/usr/share/applications" "$R/usr/share/mime/packages" \
  "$R/usr/share/man/man1" "$R/usr/share/doc/osteoview" "$R/usr/share/icons/hicolor/scalable/apps" \
  "$R/DEBIAN"
cp -a "$BUNDLE" "$R/opt/osteoview"
# Relative, so the package also runs when unpacked somewhere else (dpkg-deb -x, the tests).
ln -s ../../opt/osteoview/osteoview "$R/usr/bin/osteoview"
install -m644 "$HERE/osteoview.desktop" "$R/usr/share/applications/osteoview.desktop"
install -m644 "$HERE/osteoview-mime.xml" "$R/usr/share/mime/packages/osteoview.xml"
install -m644 "$ROOT_DIR/resources/icons/osteoview.svg" \
  "$R/usr/share/icons/hicolor/scalable/apps/osteoview.svg"
for png in "$ROOT_DIR"/resources/icons/osteoview-*.png; do
  n=$(basename "$png" .png); n=${n#osteoview-}
  install -d "$R/usr/share/icons/hicolor/${n}x${n}/apps"
  install -m644 "$png" "$R/usr/share/icons/hicolor/${n}x${n}/apps/osteoview.png"
done
gzip -9n -c "$MANPAGE" > "$R/usr/share/man/man1/osteoview.1.gz"
chmod 644 "$R/usr/share/man/man1/osteoview.1.gz"
cat > "$R/usr/share/doc/osteoview/copyright" <<COPY
OsteoView $VERSION, BSD-3-Clause. The bundle under /opt/osteoview holds third-party Python
packages under their own licences (their metadata is kept beside them in /opt/osteoview/_internal).
The model weights are demo weights trained on synthetic phantoms: not for clinical use.
COPY

SIZE_KB=$(du -sk --exclude=DEBIAN "$R" | cut -f1)
# What the bundle loads from the system: Qt's xcb platform and VTK's OpenGL (Mesa), fonts.
cat > "$R/DEBIAN/control" <<CONTROL
Package: osteoview
Version: $VERSION
Architecture: amd64
Maintainer: OsteoView developers <osteoview@localhost>
Installed-Size: $SIZE_KB
Section: science
Priority: optional
Depends: libc6 (>= 2.28), libgl1, libegl1, libglx-mesa0, libfontconfig1, libdbus-1-3, libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, libxcb-xinerama0, libxcb-xkb1, libxcb-xfixes0, libxrender1, libxt6, fonts-dejavu-core
Recommends: libgl1-mesa-dri, xvfb, xauth, fonts-wqy-microhei
Description: radiology viewer with AI fracture and disease predictions
 Views radiographs, CT and MR (DICOM, DICOMDIR, NIfTI, PNG/JPEG/TIFF) and runs five
 AI tasks (spine, cervical fracture, femur AO, lumbar MR, calcaneus) on ONNX Runtime.
 Self-contained: needs no Python. Demo weights trained on synthetic phantoms; not for
 clinical use.
CONTROL
mkdir -p "$OUT"
DEB="$OUT/osteoview_${VERSION}_amd64.deb"
# gzip: xz would take minutes on the bundle's ~0.7 GB and every dpkg reads gzip.
dpkg-deb --root-owner-group -Zgzip -z6 --build "$R" "$DEB" >/dev/null
echo "$DEB"

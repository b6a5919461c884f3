"""What decoding in child processes costs: ``python -m tests.fuzz.decode_cost``.

Loads compressed real series with the decoder pool (the default) and with decoding in the
loading process (``OSTEOVIEW_DECODE_IN_PROCESS=1``, as before issue 17), each in a fresh
interpreter: the first load (pool start-up included) and the best of three warm loads.
Uncompressed series never use the pool (``tests/benchmarks/test_bench_load.py`` measures them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fuzz.mutants import REAL_DATA

REPO = Path(__file__).resolve().parents[2]
CASES = {
    "CT 20 x 512x512 JPEG 2000": REAL_DATA / "totalsegmentator" / "example_ct_dicom",
    "CR 2140x1760 JPEG 2000": REAL_DATA / "xray_nema_wg04" / "RG2_J2KR.dcm",
    "CR 2140x1760 JPEG-LS": REAL_DATA / "xray_nema_wg04" / "RG2_JLSL.dcm",
    "MR 10 x 64x64 JPEG-LS multi-frame": REAL_DATA
    / "pydicom_data"
    / "emri_small_jpeg_ls_lossless.dcm",
}
_PROBE = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
from app.study import load
t0 = time.perf_counter(); load(sys.argv[1]); first = time.perf_counter() - t0
warm = []
for _ in range(3):
    t0 = time.perf_counter(); load(sys.argv[1]); warm.append(time.perf_counter() - t0)
print(json.dumps({"first": first, "warm": min(warm)}))
"""


def measure(path: Path, in_process: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["OSTEOVIEW_DECODE_IN_PROCESS"] = "1" if in_process else "0"
    out = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True,
                         text=True, check=True, cwd=REPO, env=env)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"{'series':<36} {'in-process first/warm':>22} {'child pool first/warm':>22}")
    for name, path in CASES.items():
        a, b = measure(path, True), measure(path, False)
        print(f"{name:<36} {a['first']:>10.3f} / {a['warm']:.3f} s {b['first']:>10.3f} / "
              f"{b['warm']:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()

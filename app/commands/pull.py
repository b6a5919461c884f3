"""``osteoview pull --server URL --study UID --out DIR``: retrieve a study from a PACS (DICOMweb).

The study goes through the local cache (``$XDG_CACHE_HOME/osteoview/pacs``, bounded, least
recently used out; a dropped retrieve resumes from it) and is copied to DIR only when complete.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    from app.pacs.options import add_arguments

    p = subparsers.add_parser(
        "pull",
        help="retrieve a study from a PACS (DICOMweb) into a folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--server", required=True, metavar="URL", help="DICOMweb root URL")
    p.add_argument("--study", required=True, metavar="UID", help="StudyInstanceUID")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (new or empty)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.pacs.cache import check_uid
    from app.pacs.source import DicomwebSource, fetch_study, publish_copy

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        from app.cli import CliError

        raise CliError(f"{out}: exists and is not an empty folder")
    source = DicomwebSource(args.server.rstrip("/"), check_uid(args.study, "StudyInstanceUID"))
    folder, client = fetch_study(source, args)
    publish_copy(folder, out)
    count = sum(1 for _ in out.glob("*/*.dcm"))
    print(f"retrieved study {args.study} from {client.url}: {count} instance(s) in {out}")
    return 0

"""The PACS options of ``analyze`` and ``pull`` and their checks, cheap to import (the CLI
imports this for every command; the DICOMweb client loads only when a PACS is used)."""

from __future__ import annotations

import argparse
import sys

PREFIX = "dicomweb:"


def is_dicomweb(value: object) -> bool:
    return str(value).startswith(PREFIX)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--user and --cache-size, shared by every command that talks to a PACS."""
    parser.add_argument(
        "--user",
        metavar="NAME",
        help="PACS user (password from OSTEOVIEW_PACS_PASSWORD, the system keyring or a prompt)",
    )
    parser.add_argument(
        "--cache-size",
        type=float,
        metavar="MB",
        help="bound of the local study cache in MB (default: OSTEOVIEW_PACS_CACHE_MB or 20 GB)",
    )


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument(
        "--send",
        nargs="?",
        const=True,
        default=None,
        metavar="URL",
        help="store the results on the PACS (DICOMweb STOW-RS): DICOM SEG of the label maps, a "
        "TID 1500 SR of the findings, the report as Encapsulated PDF; to the server PATH came "
        "from (dicomweb:URL/studies/UID) or to URL",
    )


def prepare(args: argparse.Namespace) -> str:
    """Check --send before any work and turn a ``dicomweb:`` PATH into the study's folder in
    the local cache (retrieved if needed). Returns the path to analyse."""
    from app.errors import CliError

    path = str(args.path)
    send = getattr(args, "send", None)
    if send:
        if getattr(args, "anonymise", False) or getattr(args, "anonymise_key", None):
            raise CliError("--send stores results in the patient's study; not with --anonymise")
        if getattr(args, "batch", False):
            raise CliError("--send works on one study, not with --batch")
        if send is True and not is_dicomweb(path):
            raise CliError("--send needs a server: --send URL, or PATH as dicomweb:URL/studies/UID")
    if not is_dicomweb(path):
        return path
    if getattr(args, "task", None):  # a mistyped task fails before minutes of retrieving
        from app.analysis.tasks import get_spec

        get_spec(args.task)
    from app.pacs.source import fetch_query, fetch_study, is_query, parse_source

    if is_query(path):  # every study the search finds, analysed as a batch
        if send:
            raise CliError("--send works on one study, not on a PACS query")
        if hasattr(args, "batch"):
            args.batch = True
        return str(fetch_query(path, args))

    source = parse_source(path)
    folder, _ = fetch_study(source, args)
    args.pacs_server = source.server
    if hasattr(args, "single"):  # one study by definition, though its folder holds series folders
        args.single = True
    return str(folder)


def send(args: argparse.Namespace, run) -> None:
    """After a single-study analysis: store its results (``run``: a batch ``StudyRun``)."""
    target = args.send if isinstance(args.send, str) else getattr(args, "pacs_server", "")
    from app.pacs.send import send_results
    from app.pacs.source import open_client

    client = open_client(target.rstrip("/"), args)
    out = send_results(client, run.result, dict(run.request.inputs), run.report_path)
    kinds = [f"{len(out.seg)} SEG", "1 SR"] + (["1 Encapsulated PDF"] if out.pdf else [])
    study = out.sr.StudyInstanceUID
    print(f"stored {', '.join(kinds)} in study {study} on {client.url}", file=sys.stdout)

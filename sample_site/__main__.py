"""`python -m sample_site serve --port 8765` (make demo) or `python -m sample_site build OUTDIR`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from sample_site.corpus import build_sample_corpus, write_static
from sample_site.server import SampleSiteServer

logger = logging.getLogger("sample_site")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    if args.command == "build":
        write_static(build_sample_corpus(), Path(args.outdir))
        return 0
    return serve(args.host, args.port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sample_site", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the sample sites until Ctrl-C")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    build_cmd = commands.add_parser("build", help="write every page as a static file")
    build_cmd.add_argument("outdir")
    return parser.parse_args(argv)


def serve(host: str, port: int) -> int:
    # Ctrl-C, and kill/CI's SIGTERM, stop cleanly even if the parent shell ignored SIGINT (a & job).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        site = SampleSiteServer(build_sample_corpus(), host=host, port=port)  # binds the port
    except OSError as exc:  # the port is taken: say so in one line (make demo then picks another)
        sys.stderr.write(f"sample site: cannot listen on {host}:{port}: {exc.strerror or exc}\n")
        return 1
    with site as server:
        # The bound address on stdout (logs go to stderr), for scripts that start us on port 0.
        sys.stdout.write(server.base_url + "\n")
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("stopping")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

"""`fakescope serve`: a web page and a REST API that score uploads with runs kept warm."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DESCRIPTION = """Serve a web page and a REST API for scoring images and videos with trained runs.

Each --run (or --model, as in fakescope detect) is loaded once and kept warm; with neither, the
detector shipped with fakescope is served. Uploads are queued, scored in order by worker threads, and
kept with their results in --data-dir (SQLite), so jobs survive a restart. The page is at /, the API
under /v1 (OpenAPI docs at /docs), liveness at /healthz. See docs/serve.md.

examples:
  fakescope serve                                                     # the shipped detector
  fakescope serve --run runs/airl_dfdc --run runs/infer_dfdc          # http://127.0.0.1:8000
  fakescope serve --run demo_output/runs/airl --token s3cret --port 8080
  FAKESCOPE_SERVE_TOKEN=s3cret fakescope serve --run runs/airl --host 0.0.0.0 --public
"""


def _positive(kind: type) -> object:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--run",
        "--model",
        "-m",
        dest="run",
        action="append",
        metavar="RUN",
        help="a run directory (uses checkpoints/best) or a checkpoint .json/.safetensors to load; repeat "
        "for several models (default: the detector shipped with fakescope)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--public",
        action="store_true",
        help="allow binding to a non-local address (the server is then reachable from the network)",
    )
    p.add_argument(
        "--data-dir",
        default="serve_data",
        metavar="DIR",
        help="where jobs, uploads and reports are kept (default ./serve_data)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="require this bearer token on every endpoint but /healthz (or set FAKESCOPE_SERVE_TOKEN)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=_positive(float),
        default=200.0,
        metavar="MB",
        help="largest upload accepted, in MB (default 200; larger ones get HTTP 413)",
    )
    p.add_argument(
        "--queue",
        type=_positive(int),
        default=64,
        metavar="N",
        help="jobs waiting at most (default 64; past it the API answers 503 with Retry-After)",
    )
    p.add_argument(
        "--workers",
        type=_positive(int),
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker threads scoring jobs in order (default: one per core)",
    )
    p.add_argument(
        "--allow-dir",
        default=None,
        metavar="DIR",
        help="let POST /v1/jobs name a file under DIR instead of uploading it",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument(
        "--frames",
        type=_positive(int),
        default=None,
        metavar="N",
        help="frames sampled per video (default: each run's eval.frames_per_video)",
    )
    p.add_argument("--no-gradcam", action="store_true", help="reports without Grad-CAM (faster)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def run(args: argparse.Namespace) -> int:
    from fakescope.errors import ConfigError
    from fakescope.inference.shipped import shipped_model_dir
    from fakescope.serve import ServeSettings, create_app
    from fakescope.serve.settings import LOCAL_HOSTS, TOKEN_ENV
    from fakescope.utils.paths import require_output_dir

    require_output_dir(args.data_dir, "--data-dir")  # before the runs load: the job store lives there
    if args.host not in LOCAL_HOSTS:
        if not args.public:
            raise ConfigError(
                f"--host {args.host} makes the server reachable from the network; add --public to mean it"
            )
        print(
            f"fakescope serve: warning: listening on {args.host}:{args.port}, reachable from the network"
            + ("" if args.token or os.environ.get(TOKEN_ENV) else " with no token (set --token)"),
            file=sys.stderr,
        )
    allow = Path(args.allow_dir) if args.allow_dir else None
    if allow is not None and not allow.is_dir():
        raise ConfigError(f"--allow-dir {allow}: no such folder")
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("fakescope serve needs fastapi and uvicorn: pip install -e .") from None
    settings = ServeSettings(
        runs=list(args.run) if args.run else [str(shipped_model_dir())],
        data_dir=Path(args.data_dir),
        max_upload_bytes=int(args.max_upload_mb * 1e6),
        queue_size=args.queue,
        workers=args.workers,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        allow_dir=allow,
        device=args.device,
        frames_per_video=args.frames,
        gradcam=not args.no_gradcam,
    )
    app = create_app(settings)
    print(f"fakescope serve: http://{args.host}:{args.port}/  (API docs: /docs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0

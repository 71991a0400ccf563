"""``convscope explore MODEL|RUN_DIR``: open the explorer page on a local web server."""

from __future__ import annotations


def port_number(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, received {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, received {text!r}")
    return value


def register(subparsers) -> dict:
    """Add ``explore`` to the ``convscope`` command line; returns ``{"explore": handler}``."""
    explore = subparsers.add_parser(
        "explore", allow_abbrev=False, help="look inside a model in the browser (a local web page)",
        description="Serve a local web page showing the model's layers, feature maps, filters and gradients for "
        "a test image or a digit you draw, and (for a run folder) the training curves and the filters epoch by "
        "epoch. The model file is never changed.")
    explore.add_argument("source", metavar="MODEL|RUN_DIR", help="a model file (.convscope) or a run folder")
    explore.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default: 127.0.0.1, this machine only)")
    explore.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                         help="with a --host other than this machine: a name or address the page will be reached at "
                              "(repeat for several); requests naming any other Host are refused")
    explore.add_argument("--port", type=port_number, default=8050, help="port (default: 8050; 0 picks a free one)")
    explore.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    explore.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "mnist-sample"),
                         help="test images (default: mnist if found on disk, else the offline sample)")
    return {"explore": run}


def run(args) -> int:
    try:
        from .server import serve
    except ImportError as e:
        raise ImportError(f"The explorer needs Flask: pip install 'convscope[explorer]' ({e})") from e
    from .workspace import Workspace

    serve(Workspace(args.source, args.dataset), args.host, args.port, open_browser=not args.no_browser,
          allow_hosts=args.allow_host)
    return 0

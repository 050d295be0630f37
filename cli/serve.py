"""`seal serve`: the OpenAI-compatible HTTP API over the home (`api/`)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.shared import console, workspace
from seal.errors import SealError

app = typer.Typer()


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --api-key.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
          api_key: Annotated[str | None, typer.Option(envvar="SEAL_API_KEY", help=("Require `Authorization: Bearer KEY` (or set "
                  "SEAL_API_KEY)."))] = None,
          max_tokens: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 1024) -> None:
    """OpenAI-compatible HTTP API (/v1/models, /v1/chat/completions, /v1/completions, /v1/versions). `seal`
    is the active version, swapped live after a commit or rollback; `seal@vN` pins one."""
    import ipaddress

    try:
        import uvicorn

        from api import create_app
    except ImportError as e:
        if e.name not in ("fastapi", "uvicorn", "starlette"):
            raise
        raise SealError("seal serve needs FastAPI and uvicorn, which are not installed; "
                        "pip install 'seal-runtime[serve]'") from None

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise SealError(f"--host {host!r} is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0") from None
    if not loopback and not api_key:
        raise SealError(f"binding {host} exposes the model beyond this machine: set --api-key (or SEAL_API_KEY)")
    if not 0 < port < 65536 or max_tokens < 1:
        raise SealError("--port must be 1-65535 and --max-tokens at least 1")
    ws = workspace(progress=True)
    console.print(f"serving {ws.lm.name} (knowledge v{ws.store.active('knowledge')} active) on http://{host}:{port}/v1")
    uvicorn.run(create_app(ws, api_key, max_tokens), host=host, port=port, log_level="warning")

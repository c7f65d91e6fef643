"""The web page: static HTML, JS and CSS shipped in ``fakescope/serve/static`` and served as they are
(every value the page shows is set with ``textContent``, so a file name is never read as HTML), and
the page a browser gets without the token."""

from __future__ import annotations

from importlib import resources

__all__ = ["ASSET_TYPES", "load_assets", "login_page"]

ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the page, by name: its bytes and content type. Only these names are served."""
    out = {}
    for entry in resources.files("fakescope.serve").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in ASSET_TYPES:
            out[entry.name] = (entry.read_bytes(), ASSET_TYPES[suffix])
    return out


def login_page(wrong: bool = False) -> str:
    """The 401 page: a form that keeps the token in a same-site cookie and reloads; after a ``wrong``
    token it says so (the form is shown again, with the reason)."""
    said = (
        "<p id='wrong' role='alert' style='color:#b03a2e;font-weight:600'>That token is wrong; "
        "enter the token the server was started with.</p>"
        if wrong
        else ""
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fakescope: token needed</title>"
        "</head><body style='font-family:system-ui,sans-serif;margin:40px'>"
        f"<h1>fakescope serve</h1><p>This server needs its access token.</p>{said}"
        "<form id='login'><input id='token' type='password' placeholder='token' autocomplete='off' required>"
        "<button type='submit'>Open</button></form>"
        "<script>document.getElementById('login').addEventListener('submit',function(e){e.preventDefault();"
        "document.cookie='fakescope_token='+encodeURIComponent(document.getElementById('token').value)"
        "+';path=/;SameSite=Strict';location.reload();});</script></body></html>"
    )

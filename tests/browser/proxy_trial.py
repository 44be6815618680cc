"""The reverse-proxy recipe of docs/deploy.md, tried on loopback: Debian's nginx on https://127.0.0.1:8443 with a
self-signed certificate in front of `saaskpi app --expose --token ...`, an app opened through it in headless
Chromium (the page over TLS, its kernel websocket over wss), a segment switched, and the tab closed (its kernel
ends). Needs `nginx` and `openssl` (`apt-get install nginx-light openssl`); not part of the test suite.

    PYTHONPATH=lib .venv/bin/python tests/browser/proxy_trial.py
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from apps import TILE, free_port, kernel_ids, server_process, switch_segment  # noqa: E402
from chromium import ARGS, ensure_chromium  # noqa: E402

from saaskpi import paths  # noqa: E402

ROOT = paths.ROOT
NGINX_CONF = ROOT / "docs" / "deploy" / "nginx-saaskpi.conf"  # the recipe's file, as docs/deploy.md shows it
HTTPS_PORT = 8443
APP = "00_executive_summary"


def certificate(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost (for the try only)."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )


def nginx_config(folder: Path, app_port: int) -> Path:
    """The recipe's server block in a minimal nginx.conf that runs unprivileged from `folder`."""
    site = (
        NGINX_CONF.read_text()
        .replace("apps.example.com", "127.0.0.1 localhost")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{HTTPS_PORT} ssl;")
        .replace("/etc/ssl/saaskpi/cert.pem", str(folder / "cert.pem"))
        .replace("/etc/ssl/saaskpi/key.pem", str(folder / "key.pem"))
        .replace("127.0.0.1:8866", f"127.0.0.1:{app_port}")
    )
    conf = folder / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{site}
}}
""")
    return conf


def wait_until_up(url: str, timeout: float = 120) -> None:
    import ssl

    context = ssl._create_unverified_context()  # the try's self-signed certificate
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5, context=context)
            return
        except urllib.error.HTTPError as error:
            if error.code != 502:  # it answers (403 without the token); 502: nginx, the app not yet up
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer")
        time.sleep(1)


def main() -> None:
    for tool in ("nginx", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install nginx-light openssl")
    token, app_port = secrets.token_urlsafe(24), free_port()
    with tempfile.TemporaryDirectory(prefix="saaskpi-proxy-") as tmp:
        folder = Path(tmp)
        certificate(folder)
        conf = nginx_config(folder, app_port)
        subprocess.run(["nginx", "-t", "-c", str(conf)], check=True, capture_output=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
        app = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from saaskpi.cli import main; sys.exit(main())",
                "app",
                "--expose",
                f"--token={token}",
                f"--port={app_port}",
                "--max-kernels=2",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        nginx = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.DEVNULL)
        base = f"https://127.0.0.1:{HTTPS_PORT}"
        try:
            wait_until_up(f"http://127.0.0.1:{app_port}/")  # the app server (403 without the token)
            wait_until_up(base + "/voila/tree/")
            report(base, token, app_port, folder)
        finally:
            nginx.send_signal(signal.SIGQUIT)  # graceful stop
            app.send_signal(signal.SIGTERM)
            nginx.wait(timeout=30)
            app.wait(timeout=60)


def report(base: str, token: str, app_port: int, folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    server = server_process(f"http://127.0.0.1:{app_port}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), headless=True, args=ARGS)
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        no_token = page.goto(f"{base}/voila/render/{APP}.ipynb")
        print(
            f"without the token: HTTP {no_token.status} at {page.url.split('?')[0].replace(base, '')} "
            f"({page.title()!r})"
        )
        start = time.perf_counter()
        page.goto(f"{base}/voila/render/{APP}.ipynb?token={token}", timeout=600_000)
        page.wait_for_selector(TILE, timeout=600_000)
        print(f"with the token: the app rendered through nginx in {time.perf_counter() - start:.0f} s")
        kernel = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
        before, after, seconds = switch_segment(page, "enterprise", timeout_ms=300_000)
        print(
            f"segment switched over the proxied websocket in {seconds:.1f} s: "
            f"{' '.join(before.split())[:40]!r} -> {' '.join(after.split())[:40]!r}"
        )
        print("websockets:", ", ".join(sorted({u.split("?")[0].rsplit("/", 2)[0] for u in sockets})))
        page.screenshot(path=str(ROOT / "test-output" / "proxy_trial.png"), full_page=False)
        page.close(run_before_unload=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and kernel in kernel_ids(server):  # a kernel ending while listed is gone
            time.sleep(0.5)
        alive = kernel in kernel_ids(server)
        print(f"tab closed: its kernel {'still runs' if alive else 'was shut down'}")
        browser.close()
    shutdowns = [line for line in (folder / "access.log").read_text().splitlines() if "/voila/api/shutdown/" in line]
    print("shutdown beacon in nginx's access log:", shutdowns[-1].split('"')[1:3] if shutdowns else "none")


if __name__ == "__main__":
    (ROOT / "test-output").mkdir(exist_ok=True)
    main()

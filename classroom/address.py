"""Addresses students open (the join page, a game's share link): a configured public URL, else the server's
network address, never a ``localhost`` that their devices cannot reach (and where only localhost works, a note that
says so)."""

from __future__ import annotations

import socket
import urllib.parse
from dataclasses import dataclass

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0:0:0:0:0:0:0:1"}


@dataclass(frozen=True)
class JoinAddress:
    url: str  # the page with its query (the join page with the class code, a game link)
    reachable: bool  # False: only this computer can open it
    note: str | None  # what to tell the teacher about it


def lan_ip() -> str | None:
    """This machine's address on the local network (no packet is sent), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: only picks the outgoing interface
            ip = s.getsockname()[0]
    except OSError:
        try:
            ip = socket.gethostbyname(socket.gethostname())
        except OSError:
            return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def join_address(page_url: str | None, code: str, public_url: str | None = None, bind_address: str | None = None,
                 port: int | None = None, network_ip: str | None = None) -> JoinAddress:
    """Where students join class ``code`` (see ``app_address``)."""
    return app_address(page_url, "join?" + urllib.parse.urlencode({"class": code}), public_url, bind_address, port,
                       network_ip)


def app_address(page_url: str | None, query: str, public_url: str | None = None, bind_address: str | None = None,
                port: int | None = None, network_ip: str | None = None) -> JoinAddress:
    """The address students open for ``query`` (a page's url path with its query, e.g. ``join?class=ABC123``).

    page_url: the address the teacher's browser shows (st.context.url); public_url: BERT_LAB_PUBLIC_URL;
    bind_address/port: the server's ``server.address`` / ``server.port``; network_ip: ``lan_ip()``.
    """
    if public_url:
        return JoinAddress(f"{public_url.rstrip('/')}/{query}", True, None)
    u = urllib.parse.urlsplit(page_url or "http://localhost:8501/")
    base_path = u.path.rsplit("/", 1)[0]  # the app's own path prefix behind a proxy ('' when served at /)
    host = (u.hostname or "localhost").lower()
    if host not in LOOPBACK:
        return JoinAddress(f"{u.scheme}://{u.netloc}{base_path}/{query}", True, None)
    bound_locally = (bind_address or "").strip().lower() in LOOPBACK
    if network_ip and not bound_locally:
        netloc = f"{network_ip}:{port or u.port or 80}"
        return JoinAddress(f"{u.scheme}://{netloc}{base_path}/{query}", True,
                           "You opened the app as localhost; students use this computer's network address instead.")
    why = ("the server listens only on this computer (server.address is " + (bind_address or "?") + ")"
           if bound_locally else "this computer has no network address")
    return JoinAddress(f"{u.scheme}://{u.netloc}{base_path}/{query}", False,
                       f"Only this computer can open this address: {why}. For a class, start the app with "
                       "`--server.address 0.0.0.0` on the school network, or set BERT_LAB_PUBLIC_URL to the address "
                       "students can reach.")

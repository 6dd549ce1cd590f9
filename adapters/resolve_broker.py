"""The Scripts-menu route: Resolve's `resolve` object served to the panel's own process over a local socket.

A menu script gets a live `resolve` global but must not run a Qt window inside Resolve's scripting host
(ayon-resolve learnt that), and the free edition refuses external connections. So the menu entry loads
this module by path (standard library only: it runs in whatever Python Resolve picked), starts the panel
as a separate process, and answers its calls: the panel holds proxies, every call crosses the socket,
objects stay here. When Resolve (and with it this process) goes away, the panel's next call fails and
the panel closes.

Protocol (multiprocessing.connection, authenticated with a random key passed in the environment):
    ("get", handle, name)          -> ("method",) | ("value", encoded)
    ("call", handle, name, args)   -> ("value", encoded) | ("error", text)
    ("dir", handle)                -> ("value", [names])
Objects that are not None/bool/int/float/str/list/tuple/dict travel as ("obj", handle).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from multiprocessing.connection import Client, Listener
from typing import Any

__all__ = ["Broker", "listen", "serve_in_thread", "serve_panel", "connect_to_broker", "RemoteObject"]

_PLAIN = (type(None), bool, int, float, str)


class Broker:
    """Answers one client's calls on the objects it was given (handle 0 is `resolve`)."""

    def __init__(self, root: Any):
        self._objects: dict[int, Any] = {0: root}
        self._handles: dict[int, int] = {id(root): 0}

    def _encode(self, value: Any) -> Any:
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, (list, tuple)):
            return [self._encode(v) for v in value]
        if isinstance(value, dict):
            return {k: self._encode(v) for k, v in value.items()}
        handle = self._handles.get(id(value))
        if handle is None or self._objects.get(handle) is not value:
            handle = len(self._objects)
            self._objects[handle], self._handles[id(value)] = value, handle
        return ("obj", handle)

    def _decode(self, value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "ref":
            return self._objects[value[1]]
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        if isinstance(value, dict):
            return {k: self._decode(v) for k, v in value.items()}
        return value

    def answer(self, message: tuple) -> tuple:
        op, handle = message[0], message[1]
        obj = self._objects.get(handle)
        if obj is None and handle != 0:
            return ("error", f"unknown object {handle}")
        try:
            if op == "dir":
                return ("value", [str(n) for n in dir(obj)])
            if op == "get":
                attr = getattr(obj, message[2])
                return ("method",) if callable(attr) else ("value", self._encode(attr))
            if op == "call":
                args = self._decode(list(message[3]))
                return ("value", self._encode(getattr(obj, message[2])(*args)))
        except Exception as exc:  # Resolve's own errors go back as text; the broker keeps serving
            return ("error", f"{type(exc).__name__}: {exc}")
        return ("error", f"unknown operation {op!r}")

    def serve(self, conn) -> None:
        """Answer until the client hangs up."""
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            conn.send(self.answer(message))


def listen() -> tuple[Listener, str]:
    """A loopback listener and the "host:port:hexkey" address a client needs (the key is random, per listener)."""
    key = secrets.token_bytes(32)
    listener = Listener(("127.0.0.1", 0), authkey=key)
    host, port = listener.address
    return listener, f"{host}:{port}:{key.hex()}"


def serve_in_thread(root: Any) -> str:
    """Serve `root` to one client from a daemon thread; returns the address (for tests and embedding)."""
    listener, address = listen()

    def run() -> None:
        with listener, listener.accept() as conn:
            Broker(root).serve(conn)

    threading.Thread(target=run, name="resolve-broker", daemon=True).start()
    return address


def serve_panel(resolve: Any, command: list[str], *, wait_for_client: float = 60.0) -> int:
    """Start `command` (the panel) with the broker's address in its environment and serve it until it exits."""
    listener, address = listen()
    child = subprocess.Popen(command, env=dict(os.environ, LTX_RETAKE_RESOLVE_BROKER=address))
    accepted: list = []

    def accept() -> None:
        try:
            accepted.append(listener.accept())
        except OSError:
            pass

    waiter = threading.Thread(target=accept, daemon=True)
    waiter.start()
    waiter.join(wait_for_client)
    while waiter.is_alive() and child.poll() is None:  # slow start (first import of Qt): keep waiting while it lives
        waiter.join(1.0)
    listener.close()
    if accepted:
        with accepted[0] as conn:
            Broker(resolve).serve(conn)
    return child.wait()


def connect_to_broker(address: str) -> "RemoteObject":
    """The `resolve` proxy for a broker at "host:port:hexkey" (what serve_panel put in the environment)."""
    host, port, key = address.rsplit(":", 2)
    conn = Client((host, int(port)), authkey=bytes.fromhex(key))
    return RemoteObject(_Line(conn), 0)


class _Line:
    """One connection, one call at a time (the panel calls from more than one thread)."""

    def __init__(self, conn):
        self._conn, self._lock = conn, threading.Lock()

    def ask(self, message: tuple) -> Any:
        with self._lock:
            self._conn.send(message)
            answer = self._conn.recv()
        if answer[0] == "error":
            raise RuntimeError(f"Resolve: {answer[1]}")
        return answer

    def close(self) -> None:
        self._conn.close()


class RemoteObject:
    """A Resolve object living in the broker's process; attributes and calls cross the socket."""

    def __init__(self, line: _Line, handle: int):
        self._line, self._handle = line, handle

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "obj":
            return RemoteObject(self._line, value[1])
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if isinstance(value, dict):
            return {k: self._wrap(v) for k, v in value.items()}
        return value

    def __dir__(self):
        return self._line.ask(("dir", self._handle))[1]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        answer = self._line.ask(("get", self._handle, name))
        if answer[0] == "value":
            return self._wrap(answer[1])

        def method(*args: Any) -> Any:
            return self._wrap(self._line.ask(("call", self._handle, name, tuple(_unwrap(a) for a in args)))[1])

        method.__name__ = name
        return method

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteObject) and other._handle == self._handle and other._line is self._line

    def __hash__(self) -> int:
        return hash(self._handle)


def _unwrap(value: Any) -> Any:
    if isinstance(value, RemoteObject):
        return ("ref", value._handle)
    if isinstance(value, (list, tuple)):
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


if __name__ == "__main__":  # pragma: no cover - documentation of the entry the menu script uses
    sys.exit("Loaded by the Resolve Scripts-menu entry that `ltx-retake resolve install` writes; not run directly.")

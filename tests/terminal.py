"""The installed `litlab` command in a real pseudo-terminal, its screen read through a terminal
emulator (pyte), the way a person sees it. For the wiring that the pilot cannot see: the real
process, its real event loop and the real terminal size."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import pexpect
import pyte


class Terminal:
    """A running program on a ``columns`` × ``lines`` screen."""

    def __init__(self, argv: list[str], env: dict[str, str], columns: int = 160,
                 lines: int = 48) -> None:
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()  # everything the program wrote, for failure messages
        env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(lines, columns))

    @staticmethod
    def litlab(*args: str, env: dict[str, str]) -> Terminal:
        """The `litlab` console script installed beside this Python (what `make run` opens)."""
        exe = Path(sys.executable).parent / "litlab"
        return Terminal([str(exe), *args], env)

    def pump(self, timeout: float = 0.2) -> None:
        try:
            data = self.child.read_nonblocking(1 << 16, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            time.sleep(timeout)
            return
        self.raw += data
        self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        """Read the screen until ``predicate(text)`` holds; fail with the screen if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            text = self.text()
            if predicate(text):
                return text
            if not self.child.isalive():
                self.pump()
                break
        raise AssertionError(f"waited {timeout:.0f} s for {what}; the screen:\n{self.text()}")

    def type(self, text: str) -> None:
        for ch in text:  # a person types one key at a time
            self.child.send(ch)
            time.sleep(0.01)

    def press(self, key: str) -> None:
        keys = {"enter": "\r", "ctrl+q": "\x11", "escape": "\x1b", "tab": "\t"}
        self.child.send(keys[key])

    def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < deadline:
            self.pump()
        if self.child.isalive():
            self.child.terminate(force=True)
            raise AssertionError(f"the program did not exit; the screen:\n{self.text()}")
        self.pump()
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None
                   else 128 + (self.child.signalstatus or 0))

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def env_for(home: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env.update(LITLAB_HOME=str(home), **more)
    return env


class SlowStart:
    """A loopback proxy to a server that answers nothing for ``delay`` seconds, like a server
    still starting, then forwards every connection as it is (streaming included)."""

    def __init__(self, upstream: str, delay: float) -> None:
        import socket
        import threading
        from urllib.parse import urlsplit

        u = urlsplit(upstream)
        self._target = (u.hostname or "127.0.0.1", u.port or 80)
        self._open_at = time.monotonic() + delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._closed = threading.Event()
        port = self._listener.getsockname()[1]
        self.api_base = f"{u.scheme}://127.0.0.1:{port}{u.path}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client) -> None:
        import socket
        import threading

        time.sleep(max(0.0, self._open_at - time.monotonic()))
        try:
            upstream = socket.create_connection(self._target)
        except OSError:
            client.close()
            return

        def pipe(src, dst) -> None:
            try:
                while data := src.recv(1 << 16):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

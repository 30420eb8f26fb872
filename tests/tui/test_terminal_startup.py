"""`litlab` opening in a real pseudo-terminal, no model server needed: what a person sees in
the first second, and what bad settings do now that they load after the first paint."""

from __future__ import annotations

from pathlib import Path

from tests.terminal import Terminal, env_for


def test_the_chat_is_on_screen_and_takes_keys_before_anything_loads(tmp_path: Path) -> None:
    # A server that is not there: the app must still paint, take the question, and say why
    # it cannot answer rather than hang.
    env = env_for(tmp_path / "home", LITLAB_API_BASE="http://127.0.0.1:9/v1")
    term = Terminal.litlab(env=env)
    try:
        term.wait_for(lambda t: "Ask about the papers" in t, 30, "the app's first paint")
        term.type("hello")
        term.wait_for(lambda t: "hello" in t, 5, "the typed keys")
        term.wait_for(lambda t: "server: down" in t, 30, "the server's state")
        term.press("ctrl+q")
        assert term.exit_code() == 0
    finally:
        term.close()


def test_bad_settings_close_the_app_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "litlab.toml").write_text("top_k = 0\n")
    term = Terminal.litlab(env=env_for(home))
    try:
        screen = term.wait_for(lambda t: "error:" in t, 30, "the error")
        assert "top_k" in screen, screen
        assert term.exit_code() == 1  # as `litlab config show` exits on the same file
        assert "Traceback" not in term.raw.decode(errors="replace")
    finally:
        term.close()

"""The interactive terminal client (``p2sp-client``, ``python run_client.py``).

Two front ends share one command table and one ``ClientApp``:

* on a terminal, a prompt_toolkit ``PromptSession`` inside ``patch_stdout()``,
  so messages the server pushes are printed above the prompt while the user
  is typing, without breaking the line being edited;
* with piped stdin (scripts, tests), plain line-by-line reading: every line
  is a command, and the passwords a command asks for are the next lines.

Commands run one at a time, in order: a script's ``login`` must finish before
its next line is read. Server pushes are printed by a separate task as they
arrive. Adding a command is one decorated coroutine in
``p2sp.terminal.commands`` plus its ``cmd.<name>.usage`` and
``cmd.<name>.help`` strings.

Leaving is always quiet: ``quit``/``exit``, Ctrl-D (end of input) and Ctrl-C
end the client without a traceback (status 0, or 130 for a Ctrl-C that
interrupts a piped client); a closed stdout (``p2sp-client | head -1``) ends
it with status 141, as SIGPIPE ends other tools. Stdin is read on the event
loop, not in a thread, so nothing waits for a line that will never come.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from p2sp.client import Client
from p2sp.terminal import config
from p2sp.terminal.app import ClientApp
from p2sp.terminal.strings import LANGUAGES, Strings, resolve_language
from p2sp.terminal.terminals import (
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_CLOSED,
    PipeTerminal,
    PromptTerminal,
    ScrubbedHistory,
    silence_stdout,
)


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return port


def build_parser(strings: Strings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p2sp-client", description=strings("app.description"))
    parser.add_argument("--host", default=config.DEFAULT_HOST, help=strings("app.arg_host"))
    parser.add_argument(
        "--port", type=_port, default=config.DEFAULT_PORT, help=strings("app.arg_port")
    )
    parser.add_argument("--lang", choices=LANGUAGES, default=None, help=strings("app.arg_lang"))
    parser.add_argument("-v", "--verbose", action="store_true", help=strings("app.arg_verbose"))
    return parser


def _language_from_argv(argv: Sequence[str] | None) -> str:
    """``--lang`` read before the real parse, so ``--help`` is in that language too."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--lang", default=None)
    known, _ = pre.parse_known_args(argv)
    return resolve_language(known.lang)


def make_client(host: str, port: int) -> Client:
    """The SDK as the terminal uses it: reconnecting, and acking what it printed."""
    return Client(
        host,
        port,
        auto_reconnect=True,
        auto_ack=True,
        ping_interval=config.PING_INTERVAL,
        request_timeout=config.REQUEST_TIMEOUT,
        reconnect_delay=config.RECONNECT_DELAY,
        reconnect_max_delay=config.RECONNECT_MAX_DELAY,
    )


async def run_interactive(app: ClientApp) -> int:
    """The prompt_toolkit front end; returns the exit status.

    Ctrl-C clears a half-typed line, as in a shell; on an empty line it
    leaves, like Ctrl-D and ``quit``.
    """
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    session: PromptSession[str] = PromptSession(history=ScrubbedHistory())
    with patch_stdout():
        if not await app.start():
            return 1
        app.show(app.strings("app.banner", host=app.client.host, port=app.client.port))
        try:
            while not app.quitting:
                try:
                    line = await session.prompt_async(app.prompt)
                except KeyboardInterrupt:
                    if session.default_buffer.text.strip():
                        continue  # the line is cleared; the next prompt starts empty
                    break  # Ctrl-C on an empty line
                except EOFError:
                    break  # Ctrl-D
                await app.execute(line)
            app.show(app.strings("app.bye"))
        finally:
            await app.stop()
    return 0


async def run_piped(app: ClientApp, terminal: PipeTerminal) -> int:
    """The line-by-line front end; returns the exit status.

    Stops at the end of input, at ``quit``, or as soon as stdout is closed
    (status 141; what could not be shown is not acknowledged, so the server
    delivers it again at the next login).
    """
    terminal.on_output_closed = lambda: app.quit(output_closed=True)
    if not await app.start():
        return 1
    try:
        while not app.quitting:
            line = await app.unless_quit(terminal.read_line())
            if line is None:
                if not app.quitting:
                    # End of input: give events already on their way a moment.
                    await asyncio.sleep(config.PIPE_GRACE)
                break
            await app.execute(line)
    finally:
        await app.stop()
    return EXIT_OUTPUT_CLOSED if app.output_closed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``p2sp-client``; returns the exit status."""
    strings = Strings(_language_from_argv(argv))
    args = build_parser(strings).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    client = make_client(args.host, args.port)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        if interactive:
            return asyncio.run(run_interactive(ClientApp(client, strings, PromptTerminal())))
        terminal = PipeTerminal(sys.stdin, sys.stdout)
        return asyncio.run(run_piped(ClientApp(client, strings, terminal), terminal))
    except KeyboardInterrupt:  # Ctrl-C while a command ran, or in a piped client
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed where the terminal did not catch it
        silence_stdout()
        return EXIT_OUTPUT_CLOSED


if __name__ == "__main__":
    sys.exit(main())

"""kwsint-wyoming: a Wyoming protocol wake word service, for Home Assistant's voice assistants.

    kwsint-wyoming [--uri tcp://127.0.0.1:10400] [--model default:M4 [--model hey_kit.kwsq ...]]
                   [--threshold T] [--smoothing SECONDS] [--lockout SECONDS] [--max-clients N] [--debug]
    kwsint-wyoming --model okay_nabu.tflite [--model default:M4]     # a microWakeWord model too

Serves the models over the Wyoming protocol (kwsint.interop.wyoming_service), each
named by its file's stem (default:M4: M4, okay_nabu.tflite: okay_nabu) and
announced with the wake phrase its metadata states, until Ctrl-C or SIGTERM.
A microWakeWord model (its .tflite with the .json settings of the same name
beside it, or its kwsint-import blob) detects as kwsint-run runs it, by
ESPHome's rule with its own settings (needs pymicro-features: pip install
'kwsint[microfrontend]'): --threshold replaces its probability cutoff;
--smoothing and --lockout apply to the window models only, and are refused
when no window model is served. It listens on 127.0.0.1 unless --uri
names another address (tcp://0.0.0.0:10400: every interface, so anyone who
can reach the machine can use it) or a unix:// socket. Needs the wyoming
package: pip install 'kwsint[wyoming]'. Exit status 0 after SIGTERM, 1 when
it cannot listen or pymicro-features is missing, 2 for bad arguments or an
unloadable model, 130 on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from urllib.parse import urlparse

from kwsint.cli import common

PROG = "kwsint-wyoming"
DEFAULT_URI = "tcp://127.0.0.1:10400"
DEFAULT_MODEL = "default:M4"
NEEDS_WYOMING = "needs the wyoming package: pip install 'kwsint[wyoming]'"
_LOGGER = logging.getLogger(PROG)


def _parser():
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("--uri", default=DEFAULT_URI,
                    help=f"where to listen: tcp://HOST:PORT or unix://PATH (default {DEFAULT_URI}: this machine only)")
    ap.add_argument("--model", action="append", metavar="MODEL",
                    help=f"a .kwsq model blob, default:NAME for a shipped one, or a microWakeWord .tflite (its "
                         f"settings from the .json beside it; --threshold replaces its probability cutoff, "
                         f"--smoothing and --lockout apply to window models only); repeat for several "
                         f"(default {DEFAULT_MODEL})")
    common.add_operating_point(ap, "each model's")
    ap.add_argument("--max-clients", type=int, default=None,
                    help="connections served at once; one more is refused with an error event (default 32)")
    ap.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                    help="close a connection that sends nothing for this long (default 120)")
    ap.add_argument("--backend", default=None, help="the C backend (default: the fastest)")
    ap.add_argument("--debug", action="store_true", help="log every connection and detection")
    return ap


def main(argv: list[str] | None = None) -> int:
    return common.run_command(PROG, lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=f"{PROG}: %(message)s")
    try:
        from kwsint.interop import wyoming_service
    except ImportError:
        common.error(PROG, NEEDS_WYOMING)
        return 1
    try:
        where = wyoming_service.server(args.uri)
        wake_words = wyoming_service.load_wake_words(args.model or [DEFAULT_MODEL], backend=args.backend)
        max_clients = wyoming_service.DEFAULT_MAX_CLIENTS if args.max_clients is None else args.max_clients
        idle_timeout_s = (wyoming_service.DEFAULT_IDLE_TIMEOUT_S if args.idle_timeout is None
                          else args.idle_timeout)
        service = wyoming_service.WakeWordService(wake_words, threshold=args.threshold, smoothing_s=args.smoothing,
                                                  lockout_s=args.lockout, max_clients=max_clients,
                                                  idle_timeout_s=idle_timeout_s)
    except (OSError, ValueError) as e:  # FormatError and BackendError are ValueErrors
        common.error(PROG, str(e))
        return 2
    except ImportError as e:  # a microWakeWord model's front end, pymicro-features: one line saying what to install
        common.error(PROG, str(e))
        return 1

    def ready() -> None:
        served = ", ".join(f"{w.name} ({w.phrase!r})" for w in wake_words)
        _LOGGER.info("serving %s on %s", served, args.uri)
        if urlparse(args.uri).hostname in ("0.0.0.0", "::"):
            _LOGGER.warning("listening on every interface: anyone who can reach this machine can use the service")

    asyncio.run(service.serve(where, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Running a compat part's steps in order, the way every part reports them."""

import time


def run_steps(part, srv, target, names, started):
    """Call target.<name>() for each name; print `ok`/`FAIL` lines and the part's total.

    A step returns a short note for its `ok` line. The first failure prints the server's
    log tail and stops the part. Returns the process exit code.
    """
    for name in names:
        t = time.monotonic()
        try:
            note = getattr(target, name)()
        except Exception as e:  # noqa: BLE001 - report anything as a failure
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            srv.print_log_tail()
            return 1
        print(f"ok   {name}: {note} ({time.monotonic() - t:.1f}s)", flush=True)
    print(f"took {time.monotonic() - started:.0f}s\n{part}: {len(names)} passed, 0 failed")
    return 0

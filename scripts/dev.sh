#!/usr/bin/env bash
# The README's "run it" command: embedded Redis + receiver + one worker, with a demo callback.
# Extra arguments go to `bcwebhooks dev` (try --help).
source "$(dirname "$0")/bootstrap.sh"
exec bcwebhooks dev "$@"

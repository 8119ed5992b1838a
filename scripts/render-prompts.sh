#!/usr/bin/env bash
# Renders the pre-recorded prompts in src/assets/ as raw mu-law 8 kHz (what Twilio plays).
# They are played when the agent itself has failed, so they must not depend on any network service.
# Needs espeak-ng and sox (apt-get install espeak-ng sox). Re-run after changing the wording.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

render() { # render NAME TEXT
  espeak-ng -v en-us -s 165 -w "$tmp/$1.wav" "$2"
  sox "$tmp/$1.wav" -r 8000 -c 1 -e mu-law -t raw "src/assets/$1.ulaw" silence 1 0.05 1% reverse silence 1 0.05 1% reverse
  echo "src/assets/$1.ulaw: $(( $(stat -c %s "src/assets/$1.ulaw") / 8 )) ms"
}

render apology "I'm sorry, we're having a technical problem. Please call back in a few minutes. Goodbye."

#!/usr/bin/env bash
# The workshop's request and emit steps through the gateway alone: curl and bash, no Python.
#   tests/e2e/gateway_workshop.sh http://127.0.0.1:4090
set -euo pipefail
base=${1:?usage: gateway_workshop.sh BASE_URL}

# fannode discover: Greeting is there
services=$(curl -sSf "$base/services")
grep -q '"Greeting"' <<<"$services" || { echo "no Greeting in $services" >&2; exit 1; }

# fannode request Greeting.greet '{"name": "Joe"}'
reply=$(curl -sSf -H 'Content-Type: application/json' -d '{"name": "Joe"}' "$base/rpc/Greeting/greet")
[ "$reply" = '"Hi, Joe!"' ] || { echo "unexpected reply: $reply" >&2; exit 1; }
echo "request: $reply"

# fannode emit greeted '{"name": "Ann"}'
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"name": "Ann"}' \
       "$base/events/greeted")
[ "$code" = 202 ] || { echo "emit answered $code" >&2; exit 1; }
echo "emit: $code"

# an error is JSON with a status: 404 for a method that is not there
code=$(curl -sS -o /dev/null -w '%{http_code}' -d '{}' "$base/rpc/Greeting/nope")
[ "$code" = 404 ] || { echo "unknown method answered $code" >&2; exit 1; }
echo "done"

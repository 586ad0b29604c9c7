#!/bin/bash
# Test stand-in for bashio (tests/deploy/test_home_assistant.py): the add-on's options come
# from /data/options.json, and the discovery message is written to /data/discovery.json
# instead of the Supervisor's API, which exists only inside Home Assistant.

bashio::config() {
    python3 - "$1" <<'PY'
import json, sys
value = json.load(open("/data/options.json"))[sys.argv[1]]
print(str(value).lower() if isinstance(value, bool) else value)
PY
}
bashio::config.has_value() { [ -n "$(bashio::config "$1")" ]; }
bashio::config.true() { [ "$(bashio::config "$1")" = "true" ]; }
bashio::var.json() {
    python3 -c 'import json, sys; a = sys.argv[1:]; print(json.dumps(dict(zip(a[::2], a[1::2]))))' "$@"
}
bashio::discovery() {
    printf '{"service": "%s", "config": %s}\n' "$1" "$2" >/data/discovery.json
}
bashio::log.info() { echo "INFO: $*"; }
bashio::log.error() { echo "ERROR: $*"; }

# shellcheck source=/dev/null
source "$1"

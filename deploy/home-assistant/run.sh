#!/usr/bin/with-contenv bashio
# shellcheck shell=bash
# Start Voxhelm with the add-on's options (/data/options.json, read with bashio) as its
# VOXHELM_* settings, and tell Home Assistant where the Wyoming server is.
set -euo pipefail

export VOXHELM_VAR_DIR=/data
export VOXHELM_WYOMING_STT_HOST=0.0.0.0
export VOXHELM_WYOMING_STT_PORT=10300
export VOXHELM_FASTERWHISPER_MODEL VOXHELM_WYOMING_STT_LANGUAGE VOXHELM_FASTERWHISPER_BEAM_SIZE
VOXHELM_FASTERWHISPER_MODEL="$(bashio::config 'model')"
VOXHELM_FASTERWHISPER_BEAM_SIZE="$(bashio::config 'beam_size')"
# "auto": the model detects the language (slower; needs a multilingual model).
if [ "$(bashio::config 'language')" != "auto" ]; then
    VOXHELM_WYOMING_STT_LANGUAGE="$(bashio::config 'language')"
else
    VOXHELM_WYOMING_STT_LANGUAGE=""
fi
if bashio::config.has_value 'prompt'; then
    export VOXHELM_WYOMING_STT_PROMPT
    VOXHELM_WYOMING_STT_PROMPT="$(bashio::config 'prompt')"
fi
if bashio::config.has_value 'hotwords'; then
    export VOXHELM_STT_HOTWORDS
    VOXHELM_STT_HOTWORDS="$(bashio::config 'hotwords')"
fi
if bashio::config.has_value 'voice'; then
    export VOXHELM_PIPER_DEFAULT_VOICE
    VOXHELM_PIPER_DEFAULT_VOICE="$(bashio::config 'voice')"
fi
if bashio::config.has_value 'allowed_hosts'; then
    export VOXHELM_ALLOWED_HOSTS
    VOXHELM_ALLOWED_HOSTS="$(bashio::config 'allowed_hosts')"
fi
export VOXHELM_WYOMING_STT_NORMALIZE_TRANSCRIPT VOXHELM_WYOMING_STT_EARLY_DECODE
VOXHELM_WYOMING_STT_NORMALIZE_TRANSCRIPT="$(bashio::config 'normalize_transcript')"
VOXHELM_WYOMING_STT_EARLY_DECODE="$(bashio::config 'early_decode')"
if bashio::config.true 'debug_logging'; then
    export VOXHELM_STT_DEBUG_LOGGING=true VOXHELM_LOG_LEVEL=debug
fi

announce() {
    # Wait for the server, then send Home Assistant its address (the Wyoming integration
    # then offers it under Settings > Devices & services).
    until bash -c 'exec 3<>/dev/tcp/127.0.0.1/10300' 2>/dev/null; do
        sleep 0.5
    done
    if bashio::discovery "wyoming" "$(bashio::var.json uri "tcp://$(hostname):10300")" >/dev/null; then
        bashio::log.info "Sent the Wyoming address to Home Assistant."
    else
        bashio::log.error "Could not send the Wyoming address to Home Assistant."
    fi
}
announce &

if bashio::config.true 'http_api'; then
    # The API and console on port 8000 too; its dev token is kept in /data/dev-token.
    exec voxhelm serve --wyoming --host 0.0.0.0 --port 8000
fi
exec voxhelm-wyoming-stt --uri tcp://0.0.0.0:10300

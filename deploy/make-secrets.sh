#!/bin/sh
# Write the secret files of deploy/compose.yaml's multi-host profile, each once (an existing
# file is kept): random passwords and tokens, and what is derived from them.
#
#   sh deploy/make-secrets.sh [DIR]      # DIR: deploy/secrets beside this script
#
# The directory is 0700 (only you on this host); the files are 0644 because Compose mounts
# them as they are, and the containers' user (10001) must read them.
set -eu

dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 700 "$dir"

random() {
    # Letters and digits only: the values also go into a URL and a JSON document.
    LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"
}

write() {  # write NAME VALUE: only if NAME does not exist yet
    if [ ! -e "$dir/$1" ]; then
        printf '%s\n' "$2" >"$dir/$1"
        chmod 644 "$dir/$1"
        echo "wrote $dir/$1"
    fi
}

read_secret() {
    head -n 1 "$dir/$1"
}

write db-password "$(random 32)"
write database-url "postgresql://voxhelm:$(read_secret db-password)@postgres:5432/voxhelm"
write django-secret-key "$(random 50)"
write producer-tokens "homelab=$(random 40)"
write worker-token "$(random 40)"
write worker-tokens "gpu1=$(read_secret worker-token)"
write s3-secret-key "$(random 40)"
write s3-identities.json "$(printf '{"identities": [{"name": "voxhelm", "credentials": [{"accessKey": "voxhelm", "secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List"]}]}' "$(read_secret s3-secret-key)")"

echo "producer token: $(read_secret producer-tokens | cut -d= -f2-)"

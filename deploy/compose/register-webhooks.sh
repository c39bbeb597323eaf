#!/bin/sh
# register-webhooks.sh ESPOCRM_URL PRODUCER_URL OUT: registers the create, update and delete
# webhooks in espocrm-sim as the sync user (as an EspoCRM administrator does, README "Webhooks")
# and writes the WEBHOOK_SECRETS value (id:secretKey,...) to OUT, which the producer reads as
# WEBHOOK_SECRETS_FILE. For docker-compose.yml; `vmhctl webhooks register` replaces it once
# vmhctl exists. The API key is espocrm-sim's development default unless ESPOCRM_API_KEY is set.
set -eu

espo=$1
producer=$2
out=$3
key=${ESPOCRM_API_KEY:-dev-espocrm-key}

# espocrm-sim may still be starting.
tries=0
until curl -fs -o /dev/null -H "X-Api-Key: $key" "$espo/api/v1/App/user"; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || { echo "register-webhooks: $espo does not answer" >&2; exit 1; }
    sleep 1
done

secrets=""
for ev in create update delete; do
    url="$producer/webhook/beteiligte/$ev"
    body="{\"event\":\"CBeteiligte.$ev\",\"url\":\"$url\",\"skipOwn\":true}"
    answer=$(curl -fsS -X POST -H "X-Api-Key: $key" -H 'Content-Type: application/json' \
        -d "$body" "$espo/api/v1/Webhook")
    id=$(printf '%s' "$answer" | sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
    secret=$(printf '%s' "$answer" | sed -n 's/.*"secretKey" *: *"\([^"]*\)".*/\1/p')
    if [ -z "$id" ] || [ -z "$secret" ]; then
        echo "register-webhooks: unexpected answer from $espo" >&2
        exit 1
    fi
    secrets="$secrets${secrets:+,}$id:$secret"
done
printf '%s\n' "$secrets" >"$out.tmp"
mv "$out.tmp" "$out"
echo "register-webhooks: 3 webhooks registered, secrets in $out"

#!/bin/sh
# Remove Vigil's containers and volumes, then the two images the package loaded. `docker image rm`
# refuses an image that another app's container still uses, which keeps that app working.
cd -P -- "$(dirname -- "$0")" || exit 1
docker compose --env-file ./env.config down --volumes
. ./env.config
docker image rm "$VIGIL_IMAGE" || true
docker image rm "$INFERENCE_SERVER_IMAGE" || true

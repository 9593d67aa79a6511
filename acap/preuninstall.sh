#!/bin/sh
# Remove Vigil's containers, volumes and image from the camera's Docker daemon.
cd -P -- "$(dirname -- "$0")" || exit 1
docker compose --env-file ./env.config down --volumes
. ./env.config
docker image rm "$VIGIL_IMAGE" || true

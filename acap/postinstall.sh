#!/bin/sh
# Load the bundled images into the Docker Compose ACAP's daemon.
cd -P -- "$(dirname -- "$0")" || exit 1
docker load -i vigil-image.tar

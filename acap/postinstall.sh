#!/bin/sh
# Load the images the package carries, Vigil's and ACAP Runtime's, into the Docker Compose ACAP's
# daemon, then check both are there. The camera usually has no internet: nothing is ever pulled.
cd -P -- "$(dirname -- "$0")" || exit 1
status=0
for archive in vigil-image.tar acap-runtime-image.tar; do
  if [ ! -f "$archive" ]; then
    echo "vigil: postinstall: $archive is not in the package" >&2
    status=1
  elif ! docker load -i "$archive"; then
    echo "vigil: postinstall: docker load -i $archive failed" >&2
    status=1
  fi
done
sh ./check-images || status=1
exit $status

#!/usr/bin/env bash
# Make sure Debian's aws CLI and rclone are installed for the S3 tool check
# (test/tools/s3-cli.test.ts). `bun run test` calls this first, so the README's one test
# command works on a fresh machine. When they are missing it installs the Debian
# packages with apt-get (as root, or through sudo -n); if that is not possible it says
# so and carries on, and the S3 tool test then fails with a clear message.
set -uo pipefail
[ -x /usr/bin/aws ] && [ -x /usr/bin/rclone ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test: /usr/bin/aws or /usr/bin/rclone is missing and there is no apt-get; install awscli and rclone to run the S3 tool check"
  exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then as_root=(sudo -n); else
    echo "test: installing awscli and rclone needs root; the S3 tool check will fail"
    exit 0
  fi
fi
echo "test: installing Debian's awscli and rclone with apt-get (needed by the S3 tool check)"
log=$(mktemp)
if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update -qq &&
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq awscli rclone; } >"$log" 2>&1 ||
  [ ! -x /usr/bin/aws ] || [ ! -x /usr/bin/rclone ]; then
  tail -n 5 "$log"
  echo "test: could not install awscli/rclone; the S3 tool check will fail"
fi
rm -f "$log"
exit 0

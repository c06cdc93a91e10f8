#!/usr/bin/env bash
# Headless Chromium for the browser tests (Debian's package, driven by Playwright).
# Prints ARKWRIGHT_TEST_CHROMIUM=path, or ARKWRIGHT_TEST_CHROMIUM_SKIP with why.
set -u
find_chromium() { command -v chromium || command -v chromium-browser; }
bin=$(find_chromium)
if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Chromium for the browser tests (apt-get)..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2
  bin=$(find_chromium)
fi
if [ -z "$bin" ]; then
  echo "export ARKWRIGHT_TEST_CHROMIUM_SKIP='Chromium is not installed and apt-get could not install it'"
else
  echo "export ARKWRIGHT_TEST_CHROMIUM=$bin"
fi

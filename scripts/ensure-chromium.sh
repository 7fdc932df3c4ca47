#!/usr/bin/env bash
# Makes sure Debian's chromium (and a CJK font, so Chinese screens render) is installed: the
# browser tests drive it through Playwright (never `playwright install`: nothing is
# downloaded from outside the package registries).
set -euo pipefail
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "noto sans cjk"; then exit 0; fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
echo "installing chromium and fonts-noto-cjk (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
[ -x /usr/bin/chromium ] || { echo "chromium did not install" >&2; exit 1; }

#!/usr/bin/env bash
# Makes sure a Vulkan adapter exists. On a machine without a GPU driver this installs Mesa's
# lavapipe (a software Vulkan device) from Debian/Ubuntu packages; with a real GPU it does nothing.
set -euo pipefail

have_vulkan_icd() {
    # No `grep -q` in a pipe: under pipefail its early exit would fail the pipe with SIGPIPE.
    case "$(ldconfig -p 2>/dev/null)" in *libvulkan.so.1*) ;; *) return 1 ;; esac
    local d
    for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
        compgen -G "$d/*.json" >/dev/null && return 0
    done
    return 1
}

if have_vulkan_icd; then
    echo "setup-gpu: a Vulkan loader and driver are installed"
    exit 0
fi
echo "setup-gpu: no Vulkan driver found; installing the lavapipe software GPU (mesa-vulkan-drivers)"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
have_vulkan_icd || { echo "setup-gpu: installation finished but no Vulkan driver is visible" >&2; exit 1; }
echo "setup-gpu: lavapipe installed"

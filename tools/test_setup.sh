#!/usr/bin/env bash
# Test set-up: system tools some tests need, installed with apt-get when missing.
#   chromium     headless screenshot of report.html (tests/reports/test_html_screenshot.py)
#   dicom3tools  dciodvfy, the DICOM validator for the SEG/SR outputs (tests/reports/test_dicom_outputs.py)
# Idempotent and quick when everything is present. Needs root (CI runs as root on a clean Debian
# machine with package-registry access); otherwise it prints what is missing and the tests that need
# it skip with the reason.
set -u

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v dciodvfy >/dev/null 2>&1 || missing+=(dicom3tools)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "test_setup: not root, cannot install ${missing[*]} (apt-get install ${missing[*]});" \
         "the screenshot / DICOM validator tests will skip" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "test_setup: no apt-get here; install ${missing[*]} yourself or those tests will skip" >&2
    exit 0
fi

echo "test_setup: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -qq)
if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get "${apt_opts[@]}" update >/dev/null 2>&1 || true
    apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || echo "test_setup: apt-get could not install ${missing[*]}; those tests will skip" >&2
fi
exit 0

#!/usr/bin/env bash
# The Debian packages the service needs to run: libmagic (core/attachments.py reads a file's
# type with it), and Pango, HarfBuzz and a font (core/documents.py: the PDFs, with weasyprint).
# `--tests` adds what the tests need: Debian's Chromium (Playwright's own browser download can't
# work here) and pdftotext (poppler-utils: the PDFs' text). Installs only what is missing, as
# root or with sudo; without apt-get it says what to install and goes on.
set -euo pipefail

PACKAGES=()
have_lib() { /sbin/ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib 'libmagic\.so\.1 ' || PACKAGES+=(libmagic1)
have_lib 'libpango-1\.0\.so\.0 ' || PACKAGES+=(libpango-1.0-0)
have_lib 'libpangoft2-1\.0\.so\.0 ' || PACKAGES+=(libpangoft2-1.0-0)
have_lib 'libharfbuzz\.so\.0 ' || PACKAGES+=(libharfbuzz0b)
fc-list 2>/dev/null | grep -qi dejavu || PACKAGES+=(fonts-dejavu-core)
if [ "${1:-}" = "--tests" ]; then
  command -v chromium >/dev/null 2>&1 || PACKAGES+=(chromium)
  command -v pdftotext >/dev/null 2>&1 || PACKAGES+=(poppler-utils)
fi
[ "${#PACKAGES[@]}" -gt 0 ] || exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Install these system packages (or your system's equivalents): ${PACKAGES[*]}" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PACKAGES[@]}"

#!/usr/bin/env bash
# image/render-user-data.sh: prints the cloud-init user-data that makes a machine of the Coyote
# server image a box on its first boot (image/README.md):
#
#   image/render-user-data.sh HOSTNAME [JOIN_TOKEN] > user-data.yaml
#
# HOSTNAME is the box's fully qualified name (box.example.org); JOIN_TOKEN, when given, is kept
# for joining a box as its buddy, as install.sh --join keeps it.
set -euo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
template="$here/cloud-init/user-data.yaml.in"

die() { printf 'render-user-data: %s\n' "$*" >&2; exit 1; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $0 HOSTNAME [JOIN_TOKEN]"; fi
hostname="${1,,}" token="${2:-}"
hostname="${hostname%.}"
# A DNS name with at least two labels: letters, digits and inner hyphens, 63 bytes a label, 253 in all.
label='[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?'
if ! [[ "$hostname" =~ ^$label(\.$label)+$ ]] || [ "${#hostname}" -gt 253 ]; then
  die "not a fully qualified host name (like box.example.org): $1"
fi
if [[ "$hostname" =~ \.[0-9]+$ ]]; then die "not a host name (its last label is a number): $1"; fi
if [ $# -eq 2 ]; then
  [[ "$token" =~ ^[A-Za-z0-9._-]{1,256}$ ]] || die "the join token may hold only letters, digits, '.', '_' and '-' (1 to 256 of them)"
fi
[ -r "$template" ] || die "the template is missing: $template"

sed -e "s/@HOSTNAME@/$hostname/g" -e "s/@SHORT@/${hostname%%.*}/g" -e "s/@JOIN_TOKEN@/$token/g" "$template"

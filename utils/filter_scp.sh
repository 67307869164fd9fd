#!/usr/bin/env bash
# Usage: utils/filter_scp.sh [--exclude] [-f <field>] <id-list> [<in.scp>] > <out.scp>
# The logic lives in speechssl.bin.filter_scp (see --help).
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.filter_scp "$@"

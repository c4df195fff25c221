#!/usr/bin/env bash
# make-sample.sh builds the small, committed reference-data sample in this
# folder from the full public files described in /work/shared/reference/README.md.
#
# Usage: reference/sample/make-sample.sh [SOURCE_DIR] [OUTPUT_DIR]
#   SOURCE_DIR defaults to /work/shared/reference, OUTPUT_DIR to this script's folder.
#
# The output is deterministic: it depends only on the source files (rows are
# chosen by fixed codes and by their position in the source file, never at
# random), so running it twice gives byte-identical files. Every sample file
# keeps the layout of its source (headerless quoted ODS CSV, ONSPD header,
# original line endings), so the loaders read the full published files too.
#
# What is kept:
#   epraccur.csv   active GP practices (status A, prescribing setting 4)
#                  commissioned by the sub-ICBs of the sample postcode areas:
#                  36L (SM, South West London), 02T (HX, Calderdale), 42D (HG,
#                  North Yorkshire); plus special cases: the first active
#                  practice commissioned by 13Q (armed forces), the first
#                  closed practice of those sub-ICBs with an SM/HX postcode,
#                  the first active Welsh practice in LD (commissioner 7A*),
#                  and the first active English practice in TD (cross-border).
#   onspd.csv      ONSPD Nov 2025 rows, same header:
#                    SM and HX live English postcodes: every 4th row;
#                    HG live: every 15th row;
#                    HX/HG rows in the minority sub-ICBs E38000232 (36J) and
#                    E38000254 (X2C4Y): all (boundary cases);
#                    LD: all live English rows, every 20th live Welsh row;
#                    TD: every 10th live English row, every 40th live Scottish row;
#                    the first 3 terminated rows of SM and of HX (loaders skip them);
#                    every live postcode of a sample practice or an open trust.
#   sicbl_icb_nhser_lookup.csv, etr.csv   whole copies.
#   cam_*.csv, devolved_commissioner_codes.csv, wales_ltla21_lhb22_lookup.csv
#                  the CAM 2024/25-2025/26 tables: whole copies.
#   hrg4_codes_2020-21_to_2025-26.csv  the HRG4+ code list: a whole copy.
#   (scottish_council_health_board.csv and vintages.csv are written by hand,
#   not derived; this script leaves them alone. See README.md.)
#   imd2025_lsoa21.csv  the IMD 2025 rows of the LSOAs (2021) used by onspd.csv.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-/work/shared/reference}
out=${2:-$here}

for f in epraccur.csv onspd_nov2025_extract.csv sicbl_icb_nhser_lookup.csv etr.csv imd2025_lsoa21.csv; do
  [[ -r "$src/$f" ]] || { echo "make-sample: missing $src/$f" >&2; exit 1; }
done
mkdir -p "$out"

# --- epraccur: fields are all quoted, so '","' splits them; $1 keeps its
# leading quote and the last field its trailing quote (and CR, if any).
awk -F'","' '
  function code(s) { sub(/^"/, "", s); return s }
  BEGIN { subicb["36L"]; subicb["02T"]; subicb["42D"] }
  {
    c = code($1); st = $13; comm = $15; setting = $26; pc = $10
    keep = (st == "A" && setting == "4" && (comm in subicb))
    if (!armed && st == "A" && comm == "13Q") { keep = 1; armed = 1 }
    if (!closed && st == "C" && setting == "4" && (comm in subicb) && pc ~ /^(SM|HX)[0-9]/) { keep = 1; closed = 1 }
    if (!welsh && st == "A" && setting == "4" && comm ~ /^7A/ && pc ~ /^LD[0-9]/) { keep = 1; welsh = 1 }
    if (!border && st == "A" && setting == "4" && comm !~ /^7A/ && pc ~ /^TD[0-9]/) { keep = 1; border = 1 }
    # CAM cases: an overseas (BFPO) armed-forces practice, a Crown
    # Dependency practice (high-level geography YAF) and the prescribing
    # cost centre of HMP High Down (Sutton, H&J hub 97T).
    if (c == "A91183" || c == "ALD200" || c == "Y02264") keep = 1
    if (keep) print
  }' "$src/epraccur.csv" > "$out/epraccur.csv"

# --- onspd: postcodes that must be present so practice and host mapping join.
needed=$(mktemp)
trap 'rm -f "$needed"' EXIT
{
  awk -F'","' '{ print $10 }' "$out/epraccur.csv"
  # open trusts only: close date (col 12) empty
  awk -F'","' '$12 == "" { print $10 }' "$src/etr.csv"
  # Appendix F sites (prisons, IRCs): CAM step E matches on their postcodes.
  awk -F',' 'NR > 1 { print $4 }' "$src/cam_health_justice_facilities.csv"
} | sort -u > "$needed"

awk -F',' -v needed="$needed" '
  function unq(s) { gsub(/"/, "", s); sub(/\r$/, "", s); return s }
  BEGIN { while ((getline l < needed) > 0) need[l] = 1 }
  NR == 1 { print; next }
  {
    pcds = unq($3); doterm = unq($5); ctry = unq($10); sicbl = unq($16)
    area = pcds; sub(/[0-9].*/, "", area)
    live = (doterm == "")
    keep = 0
    if (!live) {
      if ((area == "SM" || area == "HX") && term[area]++ < 3) keep = 1
    } else {
      g = area "|" ctry; n = ++count[g]
      if ((area == "SM" || area == "HX") && ctry == "E92000001" && n % 4 == 1) keep = 1
      else if (area == "HG" && n % 15 == 1) keep = 1
      else if ((area == "HX" || area == "HG") && (sicbl == "E38000232" || sicbl == "E38000254")) keep = 1
      else if (area == "LD" && ctry == "E92000001") keep = 1
      else if (area == "LD" && n % 20 == 1) keep = 1
      else if (area == "TD" && ctry == "E92000001" && n % 10 == 1) keep = 1
      else if (area == "TD" && ctry == "S92000003" && n % 40 == 1) keep = 1
      else if (pcds in need) keep = 1
    }
    if (keep) print
  }' "$src/onspd_nov2025_extract.csv" > "$out/onspd.csv"

cat "$src/sicbl_icb_nhser_lookup.csv" > "$out/sicbl_icb_nhser_lookup.csv"
# --- CAM tables: whole copies (each is small).
for f in cam_service_codes_2024-25_2025-26.csv cam_commissioner_assignment_reason.csv \
         cam_subicb_to_direct_commissioner.csv cam_health_justice_facilities.csv cam_armed_forces_gp.csv \
         cam_pseudo_postcodes_appendix_h.csv devolved_commissioner_codes.csv wales_ltla21_lhb22_lookup.csv; do
  cat "$src/$f" > "$out/$f"
done
cat "$src/etr.csv" > "$out/etr.csv"
# --- HRG4+ code list: a whole copy, so that CLIN-008 knows every published code.
cat "$src/hrg4_codes_2020-21_to_2025-26.csv" > "$out/hrg4_codes_2020-21_to_2025-26.csv"

# --- IMD 2025: header plus the LSOA 2021 codes (column 22) used by onspd.csv.
awk -F',' -v onspd="$out/onspd.csv" '
  BEGIN {
    getline l < onspd   # header
    while ((getline l < onspd) > 0) { split(l, f, ","); c = f[22]; gsub(/"/, "", c); if (c != "") want[c] = 1 }
  }
  NR == 1 { print; next }
  { c = $1; gsub(/"/, "", c); if (c in want) print }' "$src/imd2025_lsoa21.csv" > "$out/imd2025_lsoa21.csv"

wc -l "$out"/*.csv >&2

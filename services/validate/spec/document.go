package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// decoderRules are the rules the record decoder applies before any
// specification; a record that breaks one is rejected with it alone.
var decoderRules = []struct{ id, meaning string }{
	{record.RuleJSON, "The line is not valid JSON, is not a single JSON object (two records on one line, or an array of records), or is not UTF-8 text. A last line with no line ending that is not valid JSON is said to be possibly cut short."},
	{record.RuleDataset, "The dataset is named neither by the record nor by the submission (for CSV: no `dataset` column and no dataset named by the submission)."},
	{record.RuleUnknownField, "The record has a field name the format does not have. The failure names the field."},
	{record.RuleFieldDataset, "The record has a field of another dataset, for example `appointment_date` in an `apc` record."},
	{record.RuleType, "A value has the wrong JSON type: an object, array or `true`/`false` where text or a number is expected, or a number for `dataset`."},
	{record.RuleValue, "A value cannot be read: `cds_update_type` other than `9` or `1`, an unknown `dataset`, `price_pence` or `activity_count` that is not a whole number or is out of range."},
	{record.RuleTooLong, "The line is longer than 1 MiB. Reading goes on with the next line."},
	{record.RuleCSV, "The CSV row cannot be parsed (for example, a stray quote), a quoted cell holds a line break (no field can: it is a quote left open that took in the rows after it; the failure names the lines), or the row is not UTF-8 text. A quote never closed takes in the rest of the file: the failure names the lines, and reading stops there (the answer's `read.stopped_at_line`)."},
	{record.RuleColumns, "The CSV row has a different number of cells from the header."},
	{record.RuleCSVHeader, "The CSV header cannot be used (a column that is not a field, a repeated or unnamed column, an empty file). The whole file is rejected."},
	{record.RuleRead, "The submission could not be read, for example because the connection broke. Reading stops there (the answer's `read.stopped_at_line`)."},
}

// Document renders specs as markdown for providers: how records are
// checked, the decoder's rules, the formats and checks rules use, and per
// specification its fields, rules and code lists. docs/specifications.md is
// Document of the built-in specifications (services/cmd/specdoc).
func Document(specs []*Spec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# Data specifications\n\n")
	w("<!-- Generated from services/validate/specs/*.json by `go run ./cmd/specdoc > ../docs/specifications.md` in services/. Do not edit: a test fails when this page and the specifications differ. -->\n\n")
	w("This page is for providers and for the national exchange. It lists, for each data set, the fields dmic expects and every rule a record is checked against. ")
	w("The record format itself (file formats, field names, how the dataset is chosen, replacing and deleting records) is in [record-format.md](record-format.md).\n\n")

	w("## How records are checked\n\n")
	w("1. The decoder reads each line or CSV row. A record it cannot read is rejected with one of the [decoder rules](#decoder-rules) and no other rule runs.\n")
	w("2. The specification for the record's data set and source applies: of the versions loaded, the one with the latest effective date on or before the day the submission was received (Europe/London); before the first version's effective date, the first version. ")
	w("A national record of a data set no national specification covers is checked against the provider specification. ")
	w("A record no specification covers fails `%s` (error: %s).\n", RuleNoSpec, msgNoSpec)
	w("3. Every rule runs and all failures of a record are reported together, in the order of the specification's rules. ")
	w("A record with an **error** is rejected. A record with only **warnings** is accepted, and the warnings travel with it as data-quality flags. ")
	w("Every accepted record is stamped with the specification it passed, as `id/version` (for example `apc/2026.1`).\n\n")
	w("- A failure names the line, the record id, the rule, the field and a fixed message. It **never contains the value** of the field, which may be an NHS number, a date of birth or a postcode: look the value up in your own copy of the file.\n")
	w("- Obligations: a **mandatory** field missing is an error (`REQ-001`); a **required** field missing is a warning (`REQ-002`, or the rule the specification names for it); an **optional** field may be left out. A value is missing when the field is absent, `null` or empty.\n")
	w("- A delete (`cds_update_type` `1`) needs only the fields marked *also on a delete*; the other rules still check any value a delete carries (a delete's whole numbers are not checked: an absent number reads 0).\n")
	w("- Rules other than the obligations check a field only when it has a value.\n")
	w("- Dates are calendar dates `YYYY-MM-DD`. \"In the future\" means after today's date in England (Europe/London).\n")
	w("- A postcode that passes its format rule is stored in its canonical form: upper case, one space before the last three characters (`sw1a1aa` becomes `SW1A 1AA`).\n")
	w("- A record whose CDS unique identifier holds the patient's NHS number, local patient identifier or postcode (`CDS-004`) is reported by submission and line only, without its record id, so that the report does not carry the identifier.\n\n")
	w("## Readings of the sources\n\n")
	w("Where the NHS Data Dictionary, the CAM guidance and dmic's domain brief are silent or disagree, the specifications read them so:\n\n")
	for _, c := range readings {
		w("- %s\n", c)
	}
	w("\n")

	w("## Decoder rules\n\n")
	w("These apply while a line is read, before any specification; only the first problem of a line is reported.\n\n")
	w("| Rule | Meaning |\n|---|---|\n")
	for _, r := range decoderRules {
		w("| `%s` | %s |\n", r.id, cell(r.meaning))
	}
	w("\n## Formats\n\n")
	w("The formats a `format` rule can require.\n\n")
	w("| Format | Accepts |\n|---|---|\n")
	for _, f := range formatDefs {
		w("| `%s` | %s |\n", f.name, cell(f.doc))
	}
	w("\n## Checks\n\n")
	w("Each rule applies one of these checks to its fields, with the parameters shown.\n\n")
	w("| Check | What it checks | Parameters |\n|---|---|---|\n")
	for _, c := range checkDefs {
		var ps []string
		for _, pn := range paramNames {
			switch {
			case c.required&pn.p != 0:
				ps = append(ps, "`"+pn.name+"`")
			case c.optional&pn.p != 0:
				ps = append(ps, "`"+pn.name+"` (optional)")
			}
		}
		w("| `%s` | %s | %s |\n", c.name, cell(c.doc), strings.Join(ps, ", "))
	}

	w("\n## Specifications\n\n")
	w("| Specification | Title | Version | Effective from | Source | Data sets |\n|---|---|---|---|---|---|\n")
	for _, s := range specs {
		w("| [`%s`](#%s) | %s | %s | %s | %s | %s |\n", s.Label(), anchor(s), cell(s.Title()), s.Version(), s.EffectiveFrom(),
			s.doc.Source, codes(s.doc.Datasets))
	}
	for _, s := range specs {
		writeSpec(&b, s)
	}
	return b.String()
}

func writeSpec(b *strings.Builder, s *Spec) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	multi := len(s.datasets) > 1
	w("\n## %s\n\n", s.Label())
	w("**%s**\n\n", s.Title())
	if s.Description() != "" {
		w("%s\n\n", s.Description())
	}
	w("- Version `%s`, effective from %s (records received on or after that day)\n", s.Version(), s.EffectiveFrom())
	w("- Source: %s; data sets: %s\n", s.doc.Source, codes(s.doc.Datasets))
	w("- Document SHA-256: `%s`\n", s.SHA256())

	w("\n### Fields of %s\n\n", s.Label())
	head := "| Field | Data Dictionary item | Type | Format | Obligation | Code list |"
	rule := "|---|---|---|---|---|---|"
	if multi {
		head += " Data sets |"
		rule += "---|"
	}
	w("%s\n%s\n", head, rule)
	for _, f := range s.fields {
		obl := f.Obligation
		if f.Delete {
			obl += ", also on a delete"
		}
		cl := ""
		if f.CodeList != "" {
			cl = "`" + f.CodeList + "`"
		}
		w("| `%s` | %s | %s | %s | %s | %s |", f.Name, cell(f.Item), f.Type, cell(f.Format), obl, cl)
		if multi {
			w(" %s |", datasetCodes(f.Datasets, s.datasets))
		}
		w("\n")
	}

	w("\n### Rules of %s\n\n", s.Label())
	head = "| Rule | Severity | Fields | Check | Failure message |"
	rule = "|---|---|---|---|---|"
	if multi {
		head += " Data sets |"
		rule += "---|"
	}
	w("%s\n%s\n", head, rule)
	for i, r := range s.rules {
		rs := &s.doc.Rules[i]
		fields := codes(r.Fields)
		if len(r.Fields) == 0 {
			fields = "every " + obligationOfCheck(r.Check) + " field"
			if r.Check == "required" {
				fields += " no other rule names"
			}
		}
		if r.ReportField != "" {
			fields += " (failure names `" + r.ReportField + "`)"
		}
		check := "`" + r.Check + "`" + paramText(rs.Params)
		if len(rs.UnlessFailed) > 0 {
			check += "; not when " + codes(rs.UnlessFailed) + " failed on the field"
		}
		if rs.When != nil {
			check += "; only when `" + rs.When.Field + "` is " + codes(rs.When.In)
		}
		w("| `%s` | %s | %s | %s | %s |", r.ID, severityName(r.Severity), fields, cell(check), cell(r.Message))
		if multi {
			w(" %s |", datasetCodes(r.Datasets, s.datasets))
		}
		w("\n")
	}

	if len(s.doc.CodeLists) == 0 {
		return
	}
	w("\n### Code lists of %s\n", s.Label())
	for _, name := range slices.Sorted(maps.Keys(s.doc.CodeLists)) {
		cl := s.doc.CodeLists[name]
		w("\n#### `%s` (%s, %s)\n\n", name, s.Label(), cell(cl.Title))
		if cl.Source != "" {
			w("Source: %s.\n\n", strings.TrimSuffix(cl.Source, "."))
		}
		w("| Code | Meaning |\n|---|---|\n")
		for _, c := range slices.Sorted(maps.Keys(cl.Codes)) {
			w("| `%s` | %s |\n", c, cell(cl.Codes[c]))
		}
	}
}

// paramText shows a rule's parameters.
func paramText(p *Params) string {
	if p == nil {
		return ""
	}
	var parts []string
	if p.CodeList != "" {
		parts = append(parts, "code list `"+p.CodeList+"`")
	}
	if p.Format != "" {
		parts = append(parts, "format `"+p.Format+"`")
	}
	if p.Length != 0 {
		parts = append(parts, fmt.Sprintf("length %d", p.Length))
	}
	if p.Date != "" {
		parts = append(parts, "date "+p.Date)
	}
	if p.Values != nil {
		parts = append(parts, "values "+codes(p.Values))
	}
	if p.Except != nil {
		parts = append(parts, "except "+codes(p.Except))
	}
	if p.Min != nil {
		parts = append(parts, fmt.Sprintf("min %d", *p.Min))
	}
	if p.Statuses != nil {
		parts = append(parts, "statuses "+codes(p.Statuses))
	}
	if p.Number != "" {
		parts = append(parts, "number "+p.Number)
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

func obligationOfCheck(check string) string {
	if check == "mandatory" {
		return ObligationMandatory
	}
	return ObligationRequired
}

func severityName(s dmicv1.Severity) string {
	if s == dmicv1.Severity_SEVERITY_WARNING {
		return severityWarning
	}
	return severityError
}

// datasetCodes is "all" when ds is every dataset of the specification.
func datasetCodes(ds, all []dmicv1.Dataset) string {
	if len(ds) == len(all) {
		return "all"
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = record.DatasetName(d)
	}
	return codes(names)
}

func codes(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "`" + x + "`"
	}
	return strings.Join(out, ", ")
}

// anchor is the GitHub anchor of a specification's heading ("apc/2026.1"
// reads "apc20261").
func anchor(s *Spec) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s.Label()) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// cell makes text safe in a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// readings are the choices the specifications make where their sources are
// silent or disagree, published with them so that a provider can see why.
var readings = []string{
	"**ICD-10 and OPCS-4 codes** have the Data Dictionary's lengths (change notice 1496, \"Clinical Coding\"): ICD-10 min an4 max an6, an undivided three-character code filled with `X` (`I10X`; a bare `I10` is refused), an optional fifth character (digit or `-`) and then an asterisk/dagger indicator `A`/`D`; OPCS-4 exactly a letter and 3 digits (`W37` is refused). Earlier versions of these pages accepted three-character codes of both. The secondary lists (`;`-separated) are held to the same forms code by code, as warnings (`CLIN-006`, `CLIN-007`): commissioner assignment's infertility step reads them, but a bad secondary code does not make the activity unusable.",
	"**`G9999981`** (no registered GP) is accepted in `general_medical_practice_code` as a default code, like `V81999`, `V81998` and `V81997`, though it is 8 characters: the Data Dictionary's default-codes table lists it, and commissioner assignment reads it as no registered practice (it places the patient by postcode). Default codes are never looked up in the practice reference data (`ORG-006`).",
	"**Gender**: one code list for PERSON GENDER CODE CURRENT (`0`, `1`, `2`, `9`) and PERSON STATED GENDER CODE (`1`, `2`, `9`, `X`), since the record carries one field for either; a code in neither is a warning (`CODE-003`).",
	"**SOURCE OF ADMISSION and DISCHARGE DESTINATION** accept the Data Dictionary codes the domain brief leaves out (`39`, `48`, `69`, `84`) besides the ones it lists.",
	"**The activity date** that the date of birth is checked against (`DOB-003`) is the APC episode end (the episode start when there is none), the outpatient appointment date, the emergency care arrival date and the local flow's activity date: the CDS activity dates. The CAM date that `CODE-031` and `CODE-032` use is commissioner assignment's (the APC spell's discharge).",
	"**A retired service line** (`CODE-032`): NHS England's list of a year keeps some lines that ended before it (`Effective_To`). Such a code is in the year's list, so `CODE-031` passes it, but commissioner assignment reads a line that ended before the year as no line of the year. It is a warning, not an error: the code is a published code of the year and the activity must still be commissioned (by the population steps), so rejecting it would lose the record, while the warning tells the provider to check its service line.",
	"**Identifiers in other fields** (`CDS-004`, `PID-001`): the Data Dictionary forbids the CDS unique identifier to contain the NHS number or local patient identifier. dmic keeps the identifier and every other field but the patient's own after de-identification (the spell and attendance ids, the code lists, the codes: a column shifted in a CSV file can put an identifier in any of them), so the same is required of them all (`PID-001`), and of the postcode; a record de-identification would refuse (`DEID-002`) is refused here first, by field. The date of birth is not searched for (dates belong in ids; a baby's date of birth is its admission date); a local patient identifier shorter than 6 letters and digits is not searched for (it would be found by chance). Both are errors from providers and on national records, because de-identification refuses such a record anyway (`DEID-002`).",
	"**PRIME RECIPIENT, PROTOCOL IDENTIFIER and CONSULTANT CODE** are not fields of dmic's record format: the submission's identity and the recipient are the caller's certificate, only net change (`cds_update_type` `9` / `1`) is supported, and no rule reads a consultant. The commissioner code's default codes `Q99` and `X98`, which are not commissioner codes, are a warning (`ORG-005`): commissioner assignment derives the commissioner anyway.",
}

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/leakguard"
)

// TestGraderDQ plays the outside grader for validation, data-quality
// feedback and de-identification: about a hundred records, each written from
// one statement of the domain brief (/work/shared/domain/commissioning-data.md,
// "brief §n") or the record format (docs/record-format.md), cited beside it,
// are submitted as a provider submits them — NDJSON and CSV, good and bad
// records mixed in one submission, then revisions and deletes — and the test
// reads what the provider, the analyst and the information-governance lead
// would read: the upload's answer and the submission report (by line, rule
// and field; `dmic validate` must agree), the rows of activity_current (age,
// areas, IMD, pseudonym), and every topic after de-identification, ClickHouse
// and the logs, scanned for the scenario's own identifiers.
//
// Dates are fixed in 2026 and before, safely in the past of any day the
// suite runs, because the real binaries read the wall clock; the one future
// date (DATE-008) is in 2999 so that it stays in the future.
//
// The expected areas come from the sample reference files themselves
// (reference/sample/onspd.csv, sicbl_icb_nhser_lookup.csv,
// imd2025_lsoa21.csv), read by hand, not from the product's refdata, so that
// the lookup is checked against its source.
func TestGraderDQ(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const db = database + "_grader"
	s := startStack(ctx, t, devstack.Config{Database: db}, 120)
	provider := sampleProvider(t)
	client := providerClient(t, s.Stack)
	uid := func(n string) string { return "B" + provider + "GRADER" + n }

	// send submits a file, checks its report against the cases, checks that
	// the offline checker gives the provider the same report before sending
	// (docs/submitting.md, dmic validate), and keeps what the provider read
	// for the leak scan.
	bin := filepath.Dir(s.Procs["ingest"].Path)
	read := map[string]string{}
	send := func(what, dataset, contentType string, body []byte, cs []graderCase) {
		t.Helper()
		rep, text := submitAndWait(ctx, t, s, client, dataset, contentType, body)
		checkReport(t, what, rep, cs)
		read[what] = text
		name := "file.ndjson"
		if contentType == "text/csv" {
			name = "file.csv"
		}
		offlineAgrees(t, bin, dataset, name, body, rep)
	}

	// 1. The admitted-care submission, NDJSON, good and bad records mixed.
	apc := gradeAPC(uid)
	send("apc ndjson", "apc", "application/x-ndjson", ndjson(t, apc), apc)

	// 2. The outpatient submission, CSV as a spreadsheet saves it (a byte
	// order mark, CRLF) with a header in mixed case and spaces, good and bad
	// rows mixed.
	op := gradeOutpatient(uid)
	send("outpatient csv", "outpatient", "text/csv", excel(csvFile(t, op)), op)

	// 3. What a hurried provider sends: unreadable lines, values in the
	// wrong shape, identifiers in ids, in NDJSON and CSV; the boundaries of
	// the statements; a CSV of every data set.
	probes, csvProbes, more, mixed := gradeProbesAPC(uid), gradeProbesCSV(uid), gradeMore(uid), gradeMixed(uid)
	send("probes ndjson", "apc", "application/x-ndjson", ndjson(t, probes), probes)
	send("probes csv", "outpatient", "text/csv", csvFile(t, csvProbes), csvProbes)
	send("boundaries ndjson", "apc", "application/x-ndjson", ndjson(t, more), more)
	send("mixed csv", "apc", "text/csv", csvFile(t, mixed), mixed)

	// A CSV file sent without its header row (brief §3 fields; record
	// format CSV: the first row is the header): the whole file is refused,
	// and the refusal names no value of the row read as the header.
	headerless := gradeHeaderless(uid)
	resp, answer := post(ctx, t, s, client, "outpatient", "text/csv", headerlessFile(t, headerless))
	read["headerless csv"] = string(answer)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(answer), "DEC-CSV-HEADER") || !strings.Contains(string(answer), "column 1") {
		t.Errorf("headerless csv: %d %s, want 400 naming DEC-CSV-HEADER and column 1", resp.StatusCode, answer)
	}

	all := slices.Concat(apc, op, probes, csvProbes, more, mixed, headerless)
	good := 0
	for _, c := range all {
		if c.outcome != "rejected" && c.fields["cds_update_type"] != "1" {
			good++
		}
	}
	// Every good record arrives: a bad one beside it loses nothing.
	q := fmt.Sprintf("SELECT count() FROM %s.activity_current WHERE cds_unique_identifier LIKE '%%GRADER%%'", db)
	s.waitFor(fmt.Sprintf("%d good grader records in activity_current", good), 3*time.Minute, func() bool { return s.count(q) == int64(good) })
	for _, c := range all {
		if c.fields["cds_update_type"] == "1" {
			continue
		}
		if c.outcome == "rejected" {
			if n := s.count(fmt.Sprintf("SELECT count() FROM %s.activity_current WHERE cds_unique_identifier = '%s'", db, c.fields["cds_unique_identifier"])); n != 0 {
				t.Errorf("%s: rejected record is in activity_current", c.name)
			}
			continue
		}
		checkRow(t, s, db, c)
	}

	// One patient, one pseudonym: across data sets, and whatever the shape
	// the number came in (a string, a JSON number, padded with spaces);
	// another patient, another; and keyed, not a bare hash (brief §1,
	// pseudonymisation [C]: same pseudonym across data sets; HMAC-SHA-256
	// over the normalised number).
	pseudonyms := func(ids ...string) []string {
		rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT pseudo_nhs_number FROM %s.activity_current WHERE cds_unique_identifier IN ('%s')",
			db, strings.Join(ids, "','")))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	if ps := pseudonyms(uid("A02"), uid("O01"), uid("O02")); len(ps) != 1 {
		t.Errorf("9449305552 in apc and outpatient records has %d pseudonyms, want 1", len(ps))
	}
	if ps := pseudonyms(uid("A03"), uid("A17"), uid("P16")); len(ps) != 1 {
		t.Errorf("4010232137 as a string, a JSON number and padded has %d pseudonyms, want 1", len(ps))
	}
	if ps := pseudonyms(uid("A01"), uid("A02"), uid("A03")); len(ps) != 3 {
		t.Errorf("three patients have %d pseudonyms, want 3", len(ps))
	}
	bare := sha256.Sum256([]byte("9434765919"))
	if ps := pseudonyms(uid("A01")); len(ps) != 1 || ps[0] == hex.EncodeToString(bare[:]) {
		t.Errorf("pseudonym of 9434765919 is %v: want one, keyed (not its bare SHA-256)", ps)
	}

	// 4. Revisions and deletes (brief §3 net change), sent later in a
	// submission of their own: a delete removes, a later applicable
	// replacement wins, an earlier one changes nothing.
	revs := gradeRevisions(uid)
	send("revisions ndjson", "apc", "application/x-ndjson", ndjson(t, revs), revs)
	// Once every stage has consumed all its input, each revision has gone as
	// far as it can: activity_current shows each record's winning version.
	broker := operator(t, s.Stack)
	settle := func() {
		waitIdle(ctx, t, broker, "dmic-validate", []string{topics.Raw})
		waitIdle(ctx, t, broker, "dmic-deidentify", []string{topics.Validated})
		waitIdle(ctx, t, broker, "dmic-assign", []string{topics.Deidentified})
		waitIdle(ctx, t, broker, "dmic-reconcile", []string{topics.Assigned})
		waitIdle(ctx, t, broker, "dmic-load", load.Inputs)
	}
	// rows counts a record's rows in activity_current that match cond.
	rows := func(id, cond string) int64 {
		return s.count(fmt.Sprintf("SELECT count() FROM %s.activity_current WHERE cds_unique_identifier = '%s' AND %s", db, id, cond))
	}
	settle()
	for _, w := range []struct {
		what, id, cond string
		n              int64
	}{
		{"a delete removes the record", uid("DEL1"), "1", 0},
		{"the later replacement wins", uid("REV1"), "hrg_code = 'EB10B'", 1},
		{"an earlier revision changes nothing", uid("REV2"), "hrg_code = 'EB10A'", 1},
		{"a revision that moves house moves the areas", uid("REV3"), "lsoa_2011 = 'E01027375' AND residence_sub_icb = '00L' AND postcode_sector = 'TD12 4'", 1},
		{"a revision without an applicable time counts as applicable when received", uid("REV4"), "hrg_code = 'EB10C'", 1},
		{"a CSV delete with empty cells removes the outpatient record", uid("X04"), "1", 0},
	} {
		if n := rows(w.id, w.cond); n != w.n {
			t.Errorf("%s: %d rows, want %d", w.what, n, w.n)
		}
	}

	// A replacement applicable after the delete brings the record back
	// (record format, choice); one record twice in a submission is DUP-001
	// for the second line only.
	again := gradeAfterDelete(uid)
	send("after the delete", "apc", "application/x-ndjson", ndjson(t, again), again)
	// A delete as a CSV row, its other cells empty beside a full row (record
	// format: "a delete needs only cds_unique_identifier and provider_code";
	// an empty cell means no value).
	csvDelete := []graderCase{
		{name: "CSV delete row with empty cells", cite: "record format: delete; CSV empty cell",
			fields: map[string]any{"cds_unique_identifier": uid("O02"), "cds_update_type": "1", "provider_code": "%PROVIDER%",
				"cds_applicable_date_time": "2026-06-02T10:00:00Z"}, outcome: "accepted"},
		{name: "CSV full row beside it", cite: "record format CSV", fields: baseOutpatient(uid("Q06")), outcome: "accepted"},
	}
	send("csv delete", "outpatient", "text/csv", csvFile(t, csvDelete), csvDelete)
	settle()
	if n, m := rows(uid("O02"), "1"), rows(uid("Q06"), "1"); n != 0 || m != 1 {
		t.Errorf("after a CSV delete: %d rows of the deleted record, %d of the row beside it; want 0 and 1", n, m)
	}
	if n := rows(uid("DEL1"), "hrg_code = 'EB10C'"); n != 1 {
		t.Errorf("a replacement after the delete: %d rows, want the record back", n)
	}
	if n := rows(uid("DUP1"), "hrg_code = 'EB10A'"); n != 1 {
		t.Errorf("the first of two lines of one record: %d rows, want 1", n)
	}
	revs = slices.Concat(revs, again, csvDelete)

	// 5. No identifier of the scenario after de-identification: in
	// ClickHouse, on any topic after deidentify, in the services' logs, or in
	// the reports the provider reads.
	all = append(all, revs...)
	ids := graderIdentifiers(all)
	checkNoLeaks(ctx, t, s, ids, db)
	for what, text := range read {
		noLeaks(t, ids.ScanText("what the provider read of the "+what+" submission", text))
	}
}

// graderCase is one scenario record: where its rule is stated, what is
// submitted, and what must come of it.
type graderCase struct {
	name, cite string
	fields     map[string]any
	// outcome is accepted, warned or rejected; failures the rule|field pairs
	// the report must list for it, exactly.
	outcome  string
	failures []string
	// noRecordID: the report must not give the record's id (it holds an
	// identifier).
	noRecordID bool
	// names are patient names the record carries, scanned for like the
	// identifiers.
	names []string
	// raw, when set, is the line (NDJSON) or row (CSV) sent instead of
	// fields, for what cannot be written as a record; fields then list only
	// the identifiers the line holds, for the leak scan.
	raw string
	// strayQuote: the CSV row is written from fields with a bare quote in
	// its NHS number cell.
	strayQuote bool
	// want are activity_current columns and their values (as text).
	want map[string]string
	// nhsNumber etc. are the identifiers to scan for, when they differ from
	// the fields (a number given as a JSON number, a postcode in lower case).
	extraIDs []string
}

// baseAPC is a finished general episode (CDS type 130) that passes every
// rule, the record format's own example adapted to the sample reference
// data; each scenario changes what its statement is about.
func baseAPC(id string) map[string]any {
	return map[string]any{
		"cds_unique_identifier": id, "cds_update_type": "9", "cds_applicable_date_time": "2026-05-06T09:15:00Z",
		"provider_code": "%PROVIDER%", "site_code": "%PROVIDER%01", "commissioner_code": "36L", "administrative_category_code": "01",
		"overseas_visitor_status_code": "8", "nhs_number": "9434765919", "nhs_number_status_indicator_code": "01",
		"local_patient_identifier": "LPI" + id[len(id)-6:], "person_birth_date": "1970-03-14",
		"postcode_of_usual_address": "HG1 1AA", "person_gender_code": "2", "ethnic_category": "A",
		"general_medical_practice_code": "H85001", "cds_type": "130", "hospital_provider_spell_number": "SP0000123",
		"episode_number": "01", "start_date_hospital_provider_spell": "2026-05-02", "admission_method_code": "21",
		"source_of_admission_code": "19", "start_date_episode": "2026-05-02", "end_date_episode": "2026-05-05",
		"discharge_date_hospital_provider_spell": "2026-05-05", "discharge_method_code": "1",
		"discharge_destination_code": "19", "patient_classification_code": "1", "treatment_function_code": "300",
		"primary_diagnosis_icd": "I219", "primary_procedure_opcs": "K634", "hrg_code": "EB10A",
		"overseas_visitor_charging_category": "A",
	}
}

// with returns a copy of base with changes; a nil value removes the field.
func with(base map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// Areas of the sample ONSPD used below, read from reference/sample:
// lsoa11|lsoa21|msoa11|msoa21|sub-ICB|ICB|IMD decile|country.
var (
	areaHG11AA  = area("E01027679", "E01027679", "E02005779", "E02005779", "42D", "QOQ", "9", "E92000001")
	areaHG32AR  = area("E01027664", "E01034964", "E02005768", "E02005768", "42D", "QOQ", "8", "E92000001")
	areaTD124FH = area("E01027375", "E01027375", "E02005708", "E02005708", "00L", "QHM", "5", "E92000001")
	areaWC1N3JH = area("E01000915", "E01000915", "E02000192", "E02000192", "93C", "QMJ", "3", "E92000001")
	areaSM11AA  = area("E01004142", "E01034156", "E02000851", "E02000851", "36L", "QWE", "4", "E92000001")
	// Scotland: LSOA-level data zones, no English sub-ICB or ICB, no English
	// IMD (docs/deidentification.md, Residence).
	areaTD11AA = area("S01012275", "S01019597", "", "", "", "", "0", "S92000003")
	noArea     = area("", "", "", "", "", "", "0", "")
)

func area(lsoa11, lsoa21, msoa11, msoa21, subICB, icb, imd, country string) map[string]string {
	m := map[string]string{"lsoa_2011": lsoa11, "lsoa_2021": lsoa21, "residence_sub_icb": subICB,
		"residence_icb": icb, "imd_decile": imd, "residence_country": country}
	// An MSOA is checked where the expectation gives one (the Scottish
	// expectation leaves them out: data zones have no MSOA in the sample).
	if msoa11 != "" {
		m["msoa_2011"] = msoa11
	}
	if msoa21 != "" {
		m["msoa_2021"] = msoa21
	}
	return m
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func age(years, weeks, band string) map[string]string {
	return map[string]string{"age_at_activity_years": years, "age_at_activity_weeks": weeks, "age_band": band}
}

func gradeAPC(uid func(string) string) []graderCase {
	b := func(n string, ch map[string]any) map[string]any {
		return with(baseAPC(uid(n)), ch)
	}
	return []graderCase{
		{name: "normal postcode, age in years", cite: "brief §1 derive age at activity date, LSOA/MSOA 2011 and 2021, sub-ICB/ICB of residence; brief §3 postcode",
			fields: b("A01", nil), outcome: "accepted",
			want: merge(areaHG11AA, age("56", "0", "55-59"), map[string]string{"activity_date": "2026-05-05", "postcode_sector": "HG1 1"})},
		{name: "lower-case postcode without a space", cite: "brief §3 postcode: normalise upper-case, strip spaces, space before the last 3",
			fields: b("A02", map[string]any{"postcode_of_usual_address": "hg32ar", "nhs_number": "9449305552"}), outcome: "accepted",
			want: merge(areaHG32AR, map[string]string{"postcode_sector": "HG3 2"}), extraIDs: []string{"HG3 2AR", "hg32ar"}},
		{name: "outward form AA99", cite: "brief §3 postcode outward codes",
			fields: b("A03", map[string]any{"postcode_of_usual_address": "TD12 4FH", "nhs_number": "4010232137"}), outcome: "accepted",
			want: areaTD124FH},
		{name: "outward form AA9A with extra spaces", cite: "brief §3 postcode outward codes; record format: surrounding white space removed",
			fields: b("A04", map[string]any{"postcode_of_usual_address": " WC1N  3JH "}), outcome: "accepted",
			want: areaWC1N3JH},
		{name: "no fixed abode ZZ99 3VZ", cite: "brief §3 pseudo-postcodes",
			fields: b("A05", map[string]any{"postcode_of_usual_address": "ZZ99 3VZ"}), outcome: "accepted",
			want: merge(noArea, map[string]string{"residence_pseudo_postcode": "3VZ", "postcode_sector": ""})},
		{name: "not known ZZ99 3WZ", cite: "brief §3 pseudo-postcodes",
			fields: b("A06", map[string]any{"postcode_of_usual_address": "zz993wz"}), outcome: "accepted",
			want: merge(noArea, map[string]string{"residence_pseudo_postcode": "3WZ", "postcode_sector": ""})},
		{name: "Scottish postcode", cite: "brief §2 devolved administration; docs/deidentification.md Residence",
			fields: b("A07", map[string]any{"postcode_of_usual_address": "TD1 1AA"}), outcome: "accepted",
			want: areaTD11AA},
		{name: "infant, age in weeks, status 08 without a number", cite: "brief §1 Der_AgeWks_at_CDS_Activity_Date; brief §3 status 08 postponed (baby under 6 weeks)",
			fields: b("A08", map[string]any{"person_birth_date": "2026-04-01", "nhs_number": nil, "nhs_number_status_indicator_code": "08",
				"cds_type": "120", "start_date_hospital_provider_spell": "2026-05-01", "start_date_episode": "2026-05-01", "end_date_episode": "2026-05-06",
				"discharge_date_hospital_provider_spell": "2026-05-06"}), outcome: "accepted",
			want: merge(age("0", "5", "0"), map[string]string{"pseudo_nhs_number": ""})},
		{name: "born 29 February, day before the birthday in a non-leap year", cite: "brief §3 DOB; docs/deidentification.md Age (UK convention: birthday 1 March)",
			fields: b("A09", map[string]any{"person_birth_date": "2008-02-29", "start_date_hospital_provider_spell": "2026-02-27",
				"start_date_episode": "2026-02-27", "end_date_episode": "2026-02-28", "discharge_date_hospital_provider_spell": "2026-02-28",
				"cds_applicable_date_time": "2026-03-02T09:00:00Z"}), outcome: "accepted",
			want: age("17", "0", "15-19")},
		{name: "born 29 February, birthday on 1 March", cite: "brief §3 DOB; docs/deidentification.md Age",
			fields: b("A10", map[string]any{"person_birth_date": "2008-02-29", "start_date_hospital_provider_spell": "2026-02-27",
				"start_date_episode": "2026-02-27", "end_date_episode": "2026-03-01", "discharge_date_hospital_provider_spell": "2026-03-01",
				"cds_applicable_date_time": "2026-03-02T09:00:00Z"}), outcome: "accepted",
			want: age("18", "0", "15-19")},
		{name: "date of birth before 1880", cite: "brief §3 DOB invalid before 1880-01-01 [C]",
			fields: b("A11", map[string]any{"person_birth_date": "1879-12-31"}), outcome: "rejected",
			failures: []string{"DOB-002|person_birth_date"}},
		{name: "date of birth after the activity date", cite: "brief §3 DOB invalid after the activity date [C]",
			fields: b("A12", map[string]any{"person_birth_date": "2026-05-06"}), outcome: "rejected",
			failures: []string{"DOB-003|person_birth_date"}},
		{name: "born on the activity date", cite: "brief §3 DOB (not after the activity date); docs/deidentification.md Age",
			fields: b("A13", map[string]any{"person_birth_date": "2026-05-05", "cds_type": "120", "start_date_hospital_provider_spell": "2026-05-05",
				"start_date_episode": "2026-05-05", "nhs_number": nil, "nhs_number_status_indicator_code": "08"}), outcome: "accepted",
			want: age("0", "0", "0")},
		{name: "check digit wrong", cite: "brief §3 Modulus 11 table: 9434765918 invalid",
			fields: b("A14", map[string]any{"nhs_number": "9434765918"}), outcome: "rejected",
			failures: []string{"NHS-002|nhs_number"}},
		{name: "check digit 10", cite: "brief §3 Modulus 11 table: 123456789x invalid for any x",
			fields: b("A15", map[string]any{"nhs_number": "1234567890"}), outcome: "rejected",
			failures: []string{"NHS-002|nhs_number"}},
		{name: "repeated digits", cite: "brief §3: 0000000000 and 1111111111 pass the checksum, so reject repeated digits",
			fields: b("A16", map[string]any{"nhs_number": "0000000000"}), outcome: "rejected",
			failures: []string{"NHS-003|nhs_number"}},
		{name: "NHS number as a JSON number", cite: "record format: a number for a text field is read as its decimal text",
			fields: b("A17", map[string]any{"nhs_number": json.Number("4010232137")}), outcome: "accepted",
			want: map[string]string{"nhs_number_status_indicator_code": "01"}, extraIDs: []string{"4010232137"}},
		{name: "status indicator without its leading zero", cite: "brief §3 NHS NUMBER STATUS INDICATOR an2, keep the leading zero [C]",
			fields: b("A18", map[string]any{"nhs_number_status_indicator_code": json.Number("1")}), outcome: "rejected",
			failures: []string{"NHS-006|nhs_number_status_indicator_code"}},
		{name: "unfinished general episode, no end date", cite: "brief §3 CDS types: 190 unfinished general (required at 31 March)",
			fields: b("A19", map[string]any{"cds_type": "190", "end_date_episode": nil, "discharge_date_hospital_provider_spell": nil,
				"discharge_method_code": nil, "discharge_destination_code": nil}), outcome: "accepted",
			want: map[string]string{"cds_type": "190", "activity_date": "2026-05-02"}},
		{name: "psychiatric census", cite: "brief §3 CDS type 170 psychiatric census (outside the APC data set's types, record format)",
			fields: b("A20", map[string]any{"cds_type": "170"}), outcome: "rejected",
			failures: []string{"CODE-005|cds_type"}},
		{name: "HRG not in the HRG4+ list", cite: "brief §3 HRG4+ 5 characters; HRG4+ Code to Group list (reference/sample)",
			fields: b("A21", map[string]any{"hrg_code": "AA99Z"}), outcome: "warned",
			failures: []string{"CLIN-008|hrg_code"}, want: map[string]string{"hrg_code": "AA99Z"}},
		{name: "CDS unique identifier holding the NHS number", cite: "brief §3: the CDS UNIQUE IDENTIFIER must not contain the NHS number [C]",
			fields: b("A22", map[string]any{"cds_unique_identifier": "B" + "%PROVIDER%" + "9434765919", "nhs_number": "9434765919"}), outcome: "rejected",
			failures: []string{"CDS-004|cds_unique_identifier"}, noRecordID: true},
		{name: "applicable date/time in the future", cite: "brief §3 CDS APPLICABLE DATE/TIME orders versions; record format DATE-008",
			fields: b("A23", map[string]any{"cds_applicable_date_time": "2999-01-01T00:00:00Z"}), outcome: "rejected",
			failures: []string{"DATE-008|cds_applicable_date_time"}},
		{name: "original, deleted later", cite: "brief §3 net change: update type 1 = delete",
			fields: b("DEL1", map[string]any{"cds_applicable_date_time": "2026-06-01T10:00:00Z"}), outcome: "accepted"},
		{name: "original, replaced later", cite: "brief §3 net change: applicable date/time orders versions",
			fields: b("REV1", map[string]any{"cds_applicable_date_time": "2026-06-01T10:00:00Z"}), outcome: "accepted"},
		{name: "original, older revision sent later", cite: "brief §3 net change: versions applied in time order",
			fields: b("REV2", map[string]any{"cds_applicable_date_time": "2026-06-05T10:00:00Z"}), outcome: "accepted"},
		{name: "original, then a new address", cite: "brief §3 net change",
			fields: b("REV3", map[string]any{"cds_applicable_date_time": "2026-06-01T10:00:00Z"}), outcome: "accepted", want: areaHG11AA},
		{name: "original, then a revision without a time", cite: "record format: applicable date/time",
			fields: b("REV4", map[string]any{"cds_applicable_date_time": "2026-06-01T10:00:00Z"}), outcome: "accepted"},
	}
}

func gradeRevisions(uid func(string) string) []graderCase {
	return []graderCase{
		{name: "delete", cite: "brief §3 net change: CDS UPDATE TYPE 1 = delete; record format: a delete needs only the id and provider",
			fields: map[string]any{"cds_unique_identifier": uid("DEL1"), "cds_update_type": "1", "provider_code": "%PROVIDER%",
				"cds_applicable_date_time": "2026-06-02T10:00:00Z"}, outcome: "accepted"},
		{name: "later replacement", cite: "brief §3 net change: last writer on applicable date/time wins",
			fields: with(baseAPC(uid("REV1")), map[string]any{"cds_applicable_date_time": "2026-06-03T10:00:00Z", "hrg_code": "EB10B"}), outcome: "accepted"},
		{name: "earlier revision", cite: "brief §3 net change: versions applied in time order",
			fields: with(baseAPC(uid("REV2")), map[string]any{"cds_applicable_date_time": "2026-06-01T10:00:00Z", "hrg_code": "EB10C"}), outcome: "accepted"},
		{name: "revision with a new address", cite: "brief §3 net change: a replacement replaces the record; brief §1 areas of residence",
			fields: with(baseAPC(uid("REV3")), map[string]any{"cds_applicable_date_time": "2026-06-02T10:00:00Z", "postcode_of_usual_address": "TD12 4FH"}), outcome: "accepted"},
		{name: "revision without an applicable time", cite: "record format: a revision without cds_applicable_date_time counts as applicable when received",
			fields: with(baseAPC(uid("REV4")), map[string]any{"cds_applicable_date_time": nil, "hrg_code": "EB10C"}), outcome: "warned",
			failures: []string{"REQ-002|cds_applicable_date_time"}},
		{name: "delete of an outpatient record", cite: "brief §3 net change delete; the record names its own data set",
			fields: map[string]any{"dataset": "outpatient", "cds_unique_identifier": uid("X04"), "cds_update_type": "1", "provider_code": "%PROVIDER%",
				"cds_applicable_date_time": "2026-06-02T10:00:00Z"}, outcome: "accepted"},
	}
}

// gradeAfterDelete brings a deleted record back and sends one record twice.
func gradeAfterDelete(uid func(string) string) []graderCase {
	return []graderCase{
		{name: "replacement after the delete", cite: "record format: a replacement after a delete is the record again (choice)",
			fields: with(baseAPC(uid("DEL1")), map[string]any{"cds_applicable_date_time": "2026-06-04T10:00:00Z", "hrg_code": "EB10C"}), outcome: "accepted"},
		{name: "first line of a record", cite: "brief §3: the CDS UNIQUE IDENTIFIER stays the same for the record's life",
			fields: with(baseAPC(uid("DUP1")), nil), outcome: "accepted"},
		{name: "the same record again in the submission", cite: "docs/specifications.md DUP-001",
			fields: with(baseAPC(uid("DUP1")), map[string]any{"hrg_code": "EB10B"}), outcome: "rejected", failures: []string{"DUP-001|cds_unique_identifier"}},
	}
}

// baseOutpatient is an outpatient attendance that passes every rule.
func baseOutpatient(id string) map[string]any {
	return map[string]any{
		"cds_unique_identifier": id, "cds_update_type": "9", "cds_applicable_date_time": "2026-05-08T17:00:00Z",
		"provider_code": "%PROVIDER%", "site_code": "%PROVIDER%01", "commissioner_code": "36L", "administrative_category_code": "01",
		"overseas_visitor_status_code": "8", "nhs_number": "9449305552", "nhs_number_status_indicator_code": "01",
		"local_patient_identifier": "LPO" + id[len(id)-6:], "person_birth_date": "1985-11-30",
		"postcode_of_usual_address": "SM1 1AA", "person_gender_code": "1", "ethnic_category": "H",
		"general_medical_practice_code": "H85020", "attendance_identifier": "OPA" + id[len(id)-3:],
		"appointment_date": "2026-05-08", "attended_or_did_not_attend_code": "5", "first_attendance_code": "1",
		"treatment_function_code": "320", "priority_type_code": "1", "primary_procedure_opcs": "U201", "hrg_code": "WF01B",
		"overseas_visitor_charging_category": "A",
	}
}

func gradeOutpatient(uid func(string) string) []graderCase {
	b := func(n string, ch map[string]any) map[string]any { return with(baseOutpatient(uid(n)), ch) }
	return []graderCase{
		{name: "CSV: lower-case postcode with its space", cite: "brief §3 postcode normalise; record format CSV",
			fields: b("O01", map[string]any{"postcode_of_usual_address": "sm1 1aa"}), outcome: "accepted",
			want: merge(areaSM11AA, age("40", "0", "40-44"), map[string]string{"activity_date": "2026-05-08"}), extraIDs: []string{"SM1 1AA", "sm1 1aa"}},
		{name: "CSV: status 01 keeps its leading zero", cite: "brief §3 NHS NUMBER STATUS INDICATOR an2, keep the leading zero",
			fields: b("O02", nil), outcome: "accepted",
			want: map[string]string{"nhs_number_status_indicator_code": "01"}},
		{name: "CSV: status written 1", cite: "brief §3 NHS NUMBER STATUS INDICATOR an2, keep the leading zero",
			fields: b("O03", map[string]any{"nhs_number_status_indicator_code": "1"}), outcome: "rejected",
			failures: []string{"NHS-006|nhs_number_status_indicator_code"}},
		{name: "CSV: status 01 with an empty NHS number", cite: "brief §3 status 01 = verified: a number must be present",
			fields: b("O04", map[string]any{"nhs_number": ""}), outcome: "rejected",
			failures: []string{"NHS-004|nhs_number"}},
		{name: "CSV: repeated ones", cite: "brief §3: 1111111111 passes the checksum, reject repeated digits",
			fields: b("O05", map[string]any{"nhs_number": "1111111111"}), outcome: "rejected",
			failures: []string{"NHS-003|nhs_number"}},
		{name: "CSV: postcode not a postcode", cite: "brief §3 postcode format: inward letters exclude C",
			fields: b("O06", map[string]any{"postcode_of_usual_address": "SW1A 1CA"}), outcome: "rejected",
			failures: []string{"PC-001|postcode_of_usual_address"}, extraIDs: []string{"SW1A 1CA"}},
		{name: "CSV: Scottish pseudo postcode", cite: "brief §3 pseudo-postcodes: ZZ99 1WZ Scotland",
			fields: b("O07", map[string]any{"postcode_of_usual_address": "ZZ99 1WZ"}), outcome: "accepted",
			want: map[string]string{"residence_country": "S92000003", "lsoa_2021": "", "residence_sub_icb": "", "residence_pseudo_postcode": "1WZ"}},
		{name: "CSV: HRG not in the list", cite: "HRG4+ Code to Group list; CLIN-008",
			fields: b("O08", map[string]any{"hrg_code": "AA99Z"}), outcome: "warned",
			failures: []string{"CLIN-008|hrg_code"}},
		{name: "CSV: one year old", cite: "brief §1 age at activity date; docs/deidentification.md Age: first birthday",
			fields: b("O09", map[string]any{"person_birth_date": "2025-05-08"}), outcome: "accepted",
			want: age("1", "0", "1-4")},
	}
}

// ndjson writes the cases as JSON lines, in order (line i+1 is case i).
func ndjson(t *testing.T, cs []graderCase) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, c := range cs {
		if c.raw != "" {
			b.WriteString(c.raw + "\n")
			continue
		}
		line, err := json.Marshal(c.fields)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// csvFile writes the cases as CSV, row i+2 being case i. The header names
// the fields in mixed case with spaces around, as the record format allows
// ("case and surrounding spaces are ignored"); a field a case lacks is an
// empty cell, which means no value.
func csvFile(t *testing.T, cs []graderCase) []byte {
	t.Helper()
	cols := map[string]bool{}
	for _, c := range cs {
		if c.raw != "" {
			continue
		}
		for k := range c.fields {
			cols[k] = true
		}
	}
	names := make([]string, 0, len(cols))
	for k := range cols {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	header := make([]string, len(names))
	for i, n := range names {
		header[i] = n
		if i%2 == 0 {
			header[i] = " " + strings.ToUpper(n) + " "
		}
	}
	if err := w.Write(header); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.raw != "" {
			w.Flush()
			b.WriteString(c.raw + "\r\n")
			continue
		}
		row := make([]string, len(names))
		for i, n := range names {
			if v, ok := c.fields[n]; ok {
				row[i] = fmt.Sprint(v)
			}
		}
		if c.strayQuote {
			for i, n := range names {
				if n == "nhs_number" {
					row[i] = row[i][:4] + `"` + row[i][4:]
				}
			}
			w.Flush()
			b.WriteString(strings.Join(row, ",") + "\r\n")
			continue
		}
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	return b.Bytes()
}

// excel is a CSV file as a spreadsheet saves it as "CSV UTF-8": a byte
// order mark first, and CRLF line endings.
func excel(file []byte) []byte {
	crlf := bytes.ReplaceAll(bytes.ReplaceAll(file, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	return append([]byte("\uFEFF"), crlf...)
}

// submitAndWait sends a file as the sample provider and polls its report
// until every record is judged.
func submitAndWait(ctx context.Context, t *testing.T, s *stackUnderTest, client *http.Client, dataset, contentType string, body []byte) (*validationv1.SubmissionReport, string) {
	t.Helper()
	resp, answer := post(ctx, t, s, client, dataset, contentType, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("submit %s: %d %s", dataset, resp.StatusCode, answer)
	}
	loc := resp.Header.Get("Location")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep := getReport(t, client, s.IngestURL()+loc+"?limit=1000")
		if rep.GetComplete() {
			// What the provider reads: the answer to the upload, the report
			// as JSON and as the text table.
			return rep, string(answer) + "\n" + protojson.Format(rep) + "\n" + getText(t, client, s.IngestURL()+loc+"?limit=1000&format=text")
		}
		if time.Now().After(deadline) {
			t.Fatalf("report of the %s submission not complete after 2 minutes: %v", dataset, rep)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkReport compares the report's failing records with the cases: each
// bad or warned case by line, with exactly its rule|field pairs, its record
// id (unless it holds an identifier), and a message naming no value.
func checkReport(t *testing.T, what string, rep *validationv1.SubmissionReport, cs []graderCase) {
	t.Helper()
	lineOf := func(i int) int64 {
		if strings.Contains(what, "csv") {
			return int64(i + 2)
		}
		return int64(i + 1)
	}
	byLine := map[int64]*validationv1.FailingRecord{}
	for _, fr := range rep.FailingRecords {
		byLine[fr.LineNumber] = fr
	}
	var accepted, warned, rejected int64
	for i, c := range cs {
		switch c.outcome {
		case "accepted":
			accepted++
		case "warned":
			warned++
		case "rejected":
			rejected++
		}
		fr := byLine[lineOf(i)]
		var got []string
		if fr != nil {
			for _, f := range fr.Failures {
				got = append(got, f.RuleId+"|"+f.Field)
				if f.Message == "" {
					t.Errorf("%s line %d (%s): failure %s has no message", what, lineOf(i), c.name, f.RuleId)
				}
			}
		}
		want := slices.Clone(c.failures)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s line %d (%s; %s): failures %v, want %v", what, lineOf(i), c.name, c.cite, got, want)
		}
		if fr == nil {
			continue
		}
		id, _ := c.fields["cds_unique_identifier"].(string)
		switch {
		case c.noRecordID && fr.RecordId != "":
			t.Errorf("%s line %d (%s): the report gives a record id that holds an identifier", what, lineOf(i), c.name)
		case !c.noRecordID && fr.RecordId != id:
			t.Errorf("%s line %d (%s): record id %q, want %q", what, lineOf(i), c.name, fr.RecordId, id)
		}
	}
	if rep.Accepted != accepted || rep.Warned != warned || rep.Rejected != rejected {
		t.Errorf("%s: accepted/warned/rejected %d/%d/%d, want %d/%d/%d", what, rep.Accepted, rep.Warned, rep.Rejected, accepted, warned, rejected)
	}
}

// checkRow reads a good case's row in activity_current and compares the
// columns the case names.
func checkRow(t *testing.T, s *stackUnderTest, db string, c graderCase) {
	t.Helper()
	cols := make([]string, 0, len(c.want)+1)
	for k := range c.want {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	exprs := []string{"toString(length(pseudo_nhs_number))"}
	for _, k := range cols {
		exprs = append(exprs, "toString("+k+")")
	}
	q := fmt.Sprintf("SELECT arrayStringConcat([%s], '\\t') FROM %s.activity_current WHERE cds_unique_identifier = '%s'",
		strings.Join(exprs, ", "), db, c.fields["cds_unique_identifier"])
	var line string
	if err := s.conn.QueryRow(context.Background(), q).Scan(&line); err != nil {
		t.Errorf("%s: %v", c.name, err)
		return
	}
	got := strings.Split(line, "\t")
	_, hasNumber := c.fields["nhs_number"]
	if pl := got[0]; hasNumber && pl != "64" {
		t.Errorf("%s: pseudonym of length %s, want 64 (HMAC-SHA-256 hex, brief §1)", c.name, pl)
	}
	for i, k := range cols {
		if got[i+1] != c.want[k] {
			t.Errorf("%s (%s): %s = %q, want %q", c.name, c.cite, k, got[i+1], c.want[k])
		}
	}
}

// graderIdentifiers are every NHS number, real postcode, date of birth and
// local patient id the scenario submitted. Dates of birth from 2025 on are
// left out: they can equal an activity date (a baby's admission).
// Pseudo-postcodes are left out: they name a country, not a person
// (brief §3), and the product keeps their inward part.
func graderIdentifiers(cs []graderCase) *leakguard.Identifiers {
	var ps []leakguard.Patient
	for _, c := range cs {
		p := leakguard.Patient{}
		p.NHSNumber = fmt.Sprint(c.fields["nhs_number"])
		if pc, _ := c.fields["postcode_of_usual_address"].(string); pc != "" && !strings.HasPrefix(strings.ToUpper(pc), "ZZ99") {
			p.Postcode = strings.TrimSpace(pc)
		}
		// 1880-01-01 is also DOB-002's limit, which its message names: the
		// rule's text, not the patient's value.
		if dob, _ := c.fields["person_birth_date"].(string); dob != "1880-01-01" {
			p.BirthDate = dob
		}
		p.LocalPatientID, _ = c.fields["local_patient_identifier"].(string)
		ps = append(ps, p)
		for _, n := range c.names {
			// leakguard has no kind for a name; it is looked for as a local
			// id is, as the text itself.
			ps = append(ps, leakguard.Patient{LocalPatientID: n})
		}
		for _, x := range c.extraIDs {
			if len(x) == 10 {
				ps = append(ps, leakguard.Patient{NHSNumber: x})
			} else {
				ps = append(ps, leakguard.Patient{Postcode: x})
			}
		}
	}
	return leakguard.NewIdentifiers(ps, "2025-01-01")
}

// gradeProbesAPC are the records a careless or hurried provider sends:
// lines that cannot be read, values in a shape the format does not take,
// identifiers where they must not be. Each carries an identifier of its own
// (NHS numbers from 40102321xx, all check-digit valid) so that the leak
// scan can tell where one went.
func gradeProbesAPC(uid func(string) string) []graderCase {
	b := func(n string, ch map[string]any) map[string]any { return with(baseAPC(uid(n)), ch) }
	line := func(m map[string]any) string {
		out, _ := json.Marshal(m)
		return string(out)
	}
	cut := line(b("P01", map[string]any{"nhs_number": "4010232102"}))
	return []graderCase{
		{name: "line cut short", cite: "record format DEC-JSON; brief §1: no identifier after de-identification",
			fields: map[string]any{"nhs_number": "4010232102", "postcode_of_usual_address": "HG1 1BW"},
			raw:    strings.Replace(cut[:len(cut)*2/3], "HG1 1AA", "HG1 1BW", 1), outcome: "rejected", failures: []string{"DEC-JSON|"}, noRecordID: true},
		{name: "field name in the wrong case", cite: "record format: JSON field names are case-sensitive (DEC-UNKNOWN-FIELD)",
			fields: b("P02", map[string]any{"nhs_number": nil, "NHS_Number": "4010232110"}), outcome: "rejected",
			failures: []string{"DEC-UNKNOWN-FIELD|NHS_Number"}, extraIDs: []string{"4010232110"}},
		{name: "NHS number as an object", cite: "record format DEC-TYPE",
			fields: b("P03", map[string]any{"nhs_number": map[string]any{"value": "4010232129"}}), outcome: "rejected",
			failures: []string{"DEC-TYPE|nhs_number"}, extraIDs: []string{"4010232129"}},
		{name: "date of birth in another format", cite: "brief §3 DOB; record format: dates are YYYY-MM-DD",
			fields: b("P04", map[string]any{"person_birth_date": "14/03/1961", "nhs_number": "4010232145"}), outcome: "rejected",
			failures: []string{"DOB-001|person_birth_date"}, extraIDs: []string{"14/03/1961"}},
		{name: "29 February of a year that has none", cite: "brief §3 DOB; docs/deidentification.md Age: impossible date",
			fields: b("P05", map[string]any{"person_birth_date": "1961-02-29", "nhs_number": "4010232153"}), outcome: "rejected",
			failures: []string{"DOB-001|person_birth_date"}, extraIDs: []string{"1961-02-29"}},
		{name: "NHS number written with spaces", cite: "brief §3 NHS NUMBER n10",
			fields: b("P06", map[string]any{"nhs_number": "401 023 2161"}), outcome: "rejected",
			failures: []string{"NHS-001|nhs_number"}, extraIDs: []string{"4010232161", "401 023 2161"}},
		{name: "CDS unique identifier holding the NHS number with dashes", cite: "brief §3: the CDS UNIQUE IDENTIFIER must not contain the NHS number",
			fields: b("P07", map[string]any{"cds_unique_identifier": "B-%PROVIDER%-401-023-2188", "nhs_number": "4010232188"}), outcome: "rejected",
			failures: []string{"CDS-002|cds_unique_identifier", "CDS-004|cds_unique_identifier"}, noRecordID: true, extraIDs: []string{"401-023-2188"}},
		{name: "CDS unique identifier holding the local patient id", cite: "brief §3: the CDS UNIQUE IDENTIFIER must not contain the local ID",
			fields:  b("P08", map[string]any{"cds_unique_identifier": "B%PROVIDER%LPX7733219", "local_patient_identifier": "LPX7733219", "nhs_number": "4010232196"}),
			outcome: "rejected", failures: []string{"CDS-004|cds_unique_identifier"}, noRecordID: true},
		{name: "CDS unique identifier holding the postcode", cite: "docs/specifications.md CDS-004 (postcode too); brief §1 remove full postcode",
			fields:  b("P09", map[string]any{"cds_unique_identifier": "B%PROVIDER%HG11BW0001", "postcode_of_usual_address": "HG1 1BW", "nhs_number": "4010232218"}),
			outcome: "rejected", failures: []string{"CDS-004|cds_unique_identifier"}, noRecordID: true},
		{name: "spell number holding the NHS number", cite: "docs/specifications.md PID-001; brief §1",
			fields: b("P10", map[string]any{"hospital_provider_spell_number": "4010232226", "nhs_number": "4010232226"}), outcome: "rejected",
			failures: []string{"PID-001|hospital_provider_spell_number"}},
		{name: "empty NHS number, status 01", cite: "brief §3 status 01 verified; record format: \"\" means no value",
			fields: b("P11", map[string]any{"nhs_number": ""}), outcome: "rejected", failures: []string{"NHS-004|nhs_number"}},
		{name: "null NHS number, status 02", cite: "brief §3 status 02 present, not traced; record format: null means no value",
			fields:  b("P12", map[string]any{"nhs_number": nil, "nhs_number_status_indicator_code": "02"}),
			raw:     strings.Replace(line(b("P12", map[string]any{"nhs_number_status_indicator_code": "02", "nhs_number": "NULLHERE"})), `"NULLHERE"`, "null", 1),
			outcome: "rejected", failures: []string{"NHS-004|nhs_number"}},
		{name: "delete carrying a wrong NHS number", cite: "record format: a delete's other fields are still checked; brief §3 Modulus 11",
			fields: map[string]any{"cds_unique_identifier": uid("P13"), "cds_update_type": "1", "provider_code": "%PROVIDER%",
				"nhs_number": "4010232235", "nhs_number_status_indicator_code": "01"}, outcome: "rejected", failures: []string{"NHS-002|nhs_number"}},
		{name: "delete carrying identifiers", cite: "brief §3 net change delete; brief §1: no identifier after de-identification",
			fields: map[string]any{"cds_unique_identifier": uid("P14"), "cds_update_type": "1", "provider_code": "%PROVIDER%",
				"nhs_number": "4010232242", "nhs_number_status_indicator_code": "01", "person_birth_date": "1944-07-21",
				"postcode_of_usual_address": "HG1 1BW", "local_patient_identifier": "LPX9911882"}, outcome: "accepted"},
		{name: "postcode with a tab", cite: "docs/deidentification.md Residence: case, spaces and tabs are ignored",
			fields: b("P15", map[string]any{"postcode_of_usual_address": "HG1\t1AA", "nhs_number": "4010232250"}), outcome: "accepted",
			want: areaHG11AA},
		{name: "NHS number padded with spaces", cite: "record format: leading and trailing white space is removed",
			fields: b("P16", map[string]any{"nhs_number": " 4010232137 "}), outcome: "accepted",
			want: map[string]string{"pseudonym_absent_reason": ""}, extraIDs: []string{"4010232137"}},
		{name: "stated gender X", cite: "brief §3 PERSON STATED GENDER CODE X not known",
			fields: b("P17", map[string]any{"person_gender_code": "X"}), outcome: "accepted",
			want: map[string]string{"person_gender_code": "X"}},
		{name: "two records on one line", cite: "record format DEC-JSON: not a single JSON object",
			fields:  map[string]any{"nhs_number": "4010232102"},
			raw:     line(b("P18", map[string]any{"nhs_number": "4010232102"})) + line(b("P19", map[string]any{"nhs_number": "4010232102"})),
			outcome: "rejected", failures: []string{"DEC-JSON|"}, noRecordID: true},
		{name: "patient's name in a field the format has not", cite: "brief §1: remove name; brief §1 [C]: a CDS record with a valid NHS number must not also carry name or address",
			fields: b("P21", map[string]any{"patient_name": "Jane Gradersmith", "nhs_number": "4010232277"}), outcome: "rejected",
			failures: []string{"DEC-UNKNOWN-FIELD|patient_name"}, names: []string{"Jane Gradersmith", "Gradersmith"}},
		{name: "good record after the bad lines", cite: "submitting: a bad record loses nothing good",
			fields: b("P20", nil), outcome: "accepted", want: areaHG11AA},
	}
}

// gradeProbesCSV are CSV rows a spreadsheet makes: a row short of cells, a
// stray quote, and good rows around them. The header is that of csvFile.
func gradeProbesCSV(uid func(string) string) []graderCase {
	b := func(n string, ch map[string]any) map[string]any { return with(baseOutpatient(uid(n)), ch) }
	return []graderCase{
		{name: "CSV: good row first", cite: "record format CSV", fields: b("Q01", nil), outcome: "accepted"},
		{name: "CSV: row short of cells", cite: "record format DEC-COLUMNS",
			fields: map[string]any{"nhs_number": "4010232110", "postcode_of_usual_address": "HG3 2BJ"},
			raw:    uid("Q02") + ",4010232110,HG3 2BJ", outcome: "rejected", failures: []string{"DEC-COLUMNS|"}, noRecordID: true},
		{name: "CSV: stray quote", cite: "record format DEC-CSV",
			fields: b("Q03", map[string]any{"nhs_number": "4010232129"}), strayQuote: true, outcome: "rejected", failures: []string{"DEC-CSV|"}, noRecordID: true},
		{name: "CSV: padded NHS number cell", cite: "record format: surrounding white space removed",
			fields: b("Q04", map[string]any{"nhs_number": "  9449305552  "}), outcome: "accepted", want: areaSM11AA},
		{name: "CSV: good row last", cite: "submitting: a bad record loses nothing good", fields: b("Q05", nil), outcome: "accepted",
			want: map[string]string{"nhs_number_status_indicator_code": "01"}},
	}
}

// gradeHeaderless are two outpatient rows of a file whose header row was
// left off; the NHS number is the first column, as spreadsheets often have
// it, so the first row's first cell is read as a column name.
func gradeHeaderless(uid func(string) string) []graderCase {
	b := func(n string, nhs, pc, dob string) map[string]any {
		return with(baseOutpatient(uid(n)), map[string]any{"nhs_number": nhs, "postcode_of_usual_address": pc, "person_birth_date": dob})
	}
	return []graderCase{
		{name: "headerless row 1", cite: "record format CSV: the first row is a header", fields: b("H01", "4010232277", "HG3 2ES", "1951-08-17"), outcome: "rejected"},
		{name: "headerless row 2", cite: "record format CSV: the first row is a header", fields: b("H02", "4010232285", "HG1 1BW", "1952-09-18"), outcome: "rejected"},
	}
}

// headerlessFile writes the cases as CSV rows, NHS number, date of birth and
// postcode first, with no header row.
func headerlessFile(t *testing.T, cs []graderCase) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, c := range cs {
		row := []string{fmt.Sprint(c.fields["nhs_number"]), fmt.Sprint(c.fields["person_birth_date"]), fmt.Sprint(c.fields["postcode_of_usual_address"])}
		for _, k := range []string{"cds_unique_identifier", "provider_code", "appointment_date", "attendance_identifier"} {
			row = append(row, fmt.Sprint(c.fields[k]))
		}
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	return b.Bytes()
}

// post sends a file as the sample provider and returns the answer.
func post(ctx context.Context, t *testing.T, s *stackUnderTest, client *http.Client, dataset, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	// The provider code is the submitter's: fill it in where a case left it
	// to the sender.
	body = bytes.ReplaceAll(body, []byte("%PROVIDER%"), []byte(sampleProvider(t)))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.IngestURL()+"/v1/submissions?dataset="+dataset, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, answer
}

// offlineAgrees runs `dmic validate` on the file submitted, as its provider,
// with the platform's reference data, and compares its report with the
// platform's: only what the platform alone knows may differ.
func offlineAgrees(t *testing.T, bin, dataset, name string, body []byte, online *validationv1.SubmissionReport) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, bytes.ReplaceAll(body, []byte("%PROVIDER%"), []byte(sampleProvider(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "dmic"), "validate", "--dataset", dataset, "--submitter", sampleProvider(t),
		"--reference-dir", refDir, "--limit", "1000", "-o", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	offline := &validationv1.SubmissionReport{}
	if err := protojson.Unmarshal(out, offline); err != nil {
		t.Fatalf("dmic validate %s: %v\n%s\n%s", name, err, out, stderr.String())
	}
	on := proto.CloneOf(online)
	on.SubmissionId, on.ReceivedTime, on.State, on.Attempts = "", nil, 0, 0
	offline.Read = nil
	if !proto.Equal(on, offline) {
		t.Errorf("%s: online and offline reports differ:\nonline:  %v\noffline: %v", name, on, offline)
	}
}

// getText reads a report as the text table the provider can ask for.
func getText(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// gradeMore are the boundaries of the same statements: the oldest valid
// birth, the last week of infancy, a terminated and a Welsh postcode, the
// outward forms the sample directory does not hold, the other CDS types
// and status indicators.
func gradeMore(uid func(string) string) []graderCase {
	b := func(n string, ch map[string]any) map[string]any { return with(baseAPC(uid(n)), ch) }
	sectorOnly := func(sector string) map[string]string {
		return merge(noArea, map[string]string{"postcode_sector": sector, "residence_note": "postcode not in reference data"})
	}
	return []graderCase{
		{name: "born 1 January 1880", cite: "brief §3 DOB invalid only before 1880-01-01 [C]; docs/deidentification.md Age bands: 90+",
			fields: b("M01", map[string]any{"person_birth_date": "1880-01-01"}), outcome: "accepted", want: age("146", "0", "90+")},
		{name: "364 days old", cite: "brief §1 Der_AgeWks_at_CDS_Activity_Date; docs/deidentification.md Age: 364-365 days is 52 weeks",
			fields: b("M02", map[string]any{"person_birth_date": "2025-05-06"}), outcome: "accepted", want: age("0", "52", "0")},
		{name: "terminated postcode", cite: "brief §5 ONSPD doterm; docs/deidentification.md Residence: live or terminated",
			fields: b("M03", map[string]any{"postcode_of_usual_address": "HX1 1AB"}), outcome: "accepted",
			want: area("E01010994", "E01034582", "E02002251", "E02002251", "02T", "QWO", "1", "E92000001")},
		{name: "Welsh postcode", cite: "brief §2 devolved administration; docs/deidentification.md Residence",
			fields: b("M04", map[string]any{"postcode_of_usual_address": "LD1 5AB"}), outcome: "accepted",
			want: map[string]string{"lsoa_2021": "W01000455", "residence_sub_icb": "", "residence_icb": "", "imd_decile": "0", "residence_country": "W92000004"}},
		{name: "outward form A9, not in the directory", cite: "brief §3 postcode outward codes A9",
			fields: b("M05", map[string]any{"postcode_of_usual_address": "M1 1AE"}), outcome: "accepted", want: sectorOnly("M1 1")},
		{name: "outward form A99, not in the directory", cite: "brief §3 postcode outward codes A99",
			fields: b("M06", map[string]any{"postcode_of_usual_address": "m601nw"}), outcome: "accepted", want: sectorOnly("M60 1"),
			extraIDs: []string{"M60 1NW", "m601nw"}},
		{name: "outward form A9A, not in the directory", cite: "brief §3 postcode outward codes A9A",
			fields: b("M07", map[string]any{"postcode_of_usual_address": "W1A 1AA"}), outcome: "accepted", want: sectorOnly("W1A 1")},
		{name: "first letter Q", cite: "brief §3 postcode: position 1 is never Q, V, X",
			fields: b("M08", map[string]any{"postcode_of_usual_address": "QA1 1AA"}), outcome: "rejected",
			failures: []string{"PC-001|postcode_of_usual_address"}},
		{name: "England n.o.s.", cite: "brief §3 pseudo-postcodes: ZZ99 3CZ England n.o.s.",
			fields: b("M09", map[string]any{"postcode_of_usual_address": "ZZ99 3CZ"}), outcome: "accepted",
			want: map[string]string{"residence_country": "E92000001", "lsoa_2021": "", "residence_sub_icb": "", "postcode_sector": "", "residence_pseudo_postcode": "3CZ"}},
		{name: "overseas, India", cite: "brief §3 pseudo-postcodes: ZZ99 nXZ other countries, e.g. ZZ99 6CZ India",
			fields: b("M10", map[string]any{"postcode_of_usual_address": "ZZ99 6CZ"}), outcome: "accepted",
			want: map[string]string{"lsoa_2021": "", "residence_sub_icb": "", "postcode_sector": "", "residence_pseudo_postcode": "6CZ"}},
		{name: "unfinished delivery episode", cite: "brief §3 CDS types: 200 unfinished delivery",
			fields: b("M11", map[string]any{"cds_type": "200", "end_date_episode": nil, "discharge_date_hospital_provider_spell": nil,
				"discharge_method_code": nil, "discharge_destination_code": nil}), outcome: "accepted",
			want: map[string]string{"cds_type": "200", "activity_date": "2026-05-02"}},
		{name: "other birth event", cite: "brief §3 CDS types: 150 other birth",
			fields: b("M12", map[string]any{"cds_type": "150"}), outcome: "accepted", want: map[string]string{"cds_type": "150"}},
		{name: "emergency care type in an APC record", cite: "brief §3 CDS types: 011 is ECDS, not admitted care",
			fields: b("M13", map[string]any{"cds_type": "011"}), outcome: "rejected", failures: []string{"CODE-005|cds_type"}},
		{name: "status 07 with a number", cite: "brief §3 status 07 = not present, trace not required [C]",
			fields: b("M14", map[string]any{"nhs_number_status_indicator_code": "07"}), outcome: "warned",
			failures: []string{"NHS-005|nhs_number"}},
		{name: "status 09", cite: "brief §3 NHS NUMBER STATUS INDICATOR 01-08 [C]",
			fields: b("M15", map[string]any{"nhs_number_status_indicator_code": "09"}), outcome: "rejected",
			failures: []string{"NHS-006|nhs_number_status_indicator_code"}},
		{name: "status 03 without a number", cite: "brief §3 status 03 trace required: no number is expected",
			fields: b("M16", map[string]any{"nhs_number_status_indicator_code": "03", "nhs_number": nil}), outcome: "accepted",
			want: map[string]string{"pseudo_nhs_number": ""}},
		{name: "private patient", cite: "brief §3 ADMINISTRATIVE CATEGORY 02 private [C]",
			fields: b("M17", map[string]any{"administrative_category_code": "02"}), outcome: "accepted",
			want: map[string]string{"administrative_category_code": "02", "commissioner_code": "VPP00"}},
		{name: "HRG the list retired before the activity", cite: "HRG4+ Code to Group list: AB17Z valid to 2022-03-31 (reference/sample); CLIN-008",
			fields: b("M19", map[string]any{"hrg_code": "AB17Z"}), outcome: "warned", failures: []string{"CLIN-008|hrg_code"}},
		{name: "the same HRG on an activity while it was in force", cite: "HRG4+ Code to Group list: AB17Z valid 2020-04-01 to 2022-03-31",
			fields: b("M20", map[string]any{"hrg_code": "AB17Z", "start_date_hospital_provider_spell": "2021-06-01", "start_date_episode": "2021-06-01",
				"end_date_episode": "2021-06-03", "discharge_date_hospital_provider_spell": "2021-06-03", "cds_applicable_date_time": "2021-06-04T09:00:00Z"}),
			outcome: "accepted", want: merge(age("51", "0", "50-54"), map[string]string{"activity_date": "2021-06-03"})},
		{name: "administrative category 05", cite: "brief §3 ADMINISTRATIVE CATEGORY 01-04 [C]",
			fields: b("M18", map[string]any{"administrative_category_code": "05"}), outcome: "rejected",
			failures: []string{"CODE-004|administrative_category_code"}},
	}
}

// gradeMixed is one CSV file of every data set, each row naming its own in
// the dataset column, the cells of other data sets' columns left empty, as
// the record format allows ("a file that mixes datasets can have a column
// for every field").
func gradeMixed(uid func(string) string) []graderCase {
	ec := func(n string, ch map[string]any) map[string]any {
		return with(map[string]any{
			"dataset": "emergency_care", "cds_unique_identifier": uid(n), "cds_update_type": "9", "cds_applicable_date_time": "2026-01-09T03:40:00Z",
			"provider_code": "%PROVIDER%", "site_code": "%PROVIDER%01", "commissioner_code": "36L", "administrative_category_code": "01",
			"overseas_visitor_status_code": "8", "nhs_number": "4010232293", "nhs_number_status_indicator_code": "01",
			"person_birth_date": "2001-06-01", "postcode_of_usual_address": "HG1 1AA", "person_gender_code": "9", "ethnic_category": "Z",
			"general_medical_practice_code": "V81999", "ec_attendance_identifier": "ECA" + n, "ec_arrival_date": "2026-01-09",
			"ec_arrival_time": "01:12", "ec_department_type": "01", "ec_chief_complaint_snomed_ct": "29857009",
			"ec_departure_date": "2026-01-09", "hrg_code": "VB09Z", "overseas_visitor_charging_category": "A",
		}, ch)
	}
	lf := func(n string, ch map[string]any) map[string]any {
		return with(map[string]any{
			"dataset": "local_flow", "cds_unique_identifier": uid(n), "cds_update_type": "9", "provider_code": "%PROVIDER%",
			"commissioner_code": "36L", "nhs_number_status_indicator_code": "07", "person_birth_date": "1960-02-29",
			"postcode_of_usual_address": "TD12 4FH", "general_medical_practice_code": "H85001", "activity_date": "2026-01-12",
			"point_of_delivery_code": "OPPROC", "treatment_function_code": "130", "hrg_code": "BZ84A", "price_pence": json.Number("14250"),
			"activity_count": json.Number("1"),
		}, ch)
	}
	return []graderCase{
		{name: "mixed CSV: emergency care", cite: "record format: dataset column, emergency_care",
			fields: ec("X01", nil), outcome: "accepted",
			want: merge(areaHG11AA, age("24", "0", "20-24"), map[string]string{"activity_date": "2026-01-09", "cds_type": "011", "ec_arrival_time": "01:12"})},
		{name: "mixed CSV: local flow", cite: "record format: dataset column, local_flow; brief §3 status 07 without a number",
			fields: lf("X02", nil), outcome: "accepted",
			want: merge(areaTD124FH, age("65", "0", "65-69"), map[string]string{"price_pence": "14250", "activity_count": "1", "pseudo_nhs_number": ""})},
		{name: "mixed CSV: apc", cite: "record format: dataset column, apc",
			fields: with(baseAPC(uid("X03")), map[string]any{"dataset": "apc"}), outcome: "accepted", want: map[string]string{"cds_type": "130"}},
		{name: "mixed CSV: outpatient by its alias in capitals", cite: "record format: dataset names are not case-sensitive, op is outpatient",
			fields: with(baseOutpatient(uid("X04")), map[string]any{"dataset": "OP"}), outcome: "accepted", want: map[string]string{"dataset": "outpatient"}},
		{name: "mixed CSV: a cell of another data set", cite: "record format: a non-empty cell in a column of another dataset is an error",
			fields: with(baseOutpatient(uid("X05")), map[string]any{"dataset": "outpatient", "cds_type": "130"}), outcome: "rejected",
			failures: []string{"DEC-FIELD-DATASET|cds_type"}},
		{name: "mixed CSV: unknown data set", cite: "record format: an unknown dataset name is DEC-VALUE",
			fields: with(baseOutpatient(uid("X06")), map[string]any{"dataset": "dental"}), outcome: "rejected",
			failures: []string{"DEC-VALUE|dataset"}},
		{name: "mixed CSV: NHS number in the chief complaint column", cite: "brief §1: no identifier after de-identification; docs/deidentification.md Identifiers in kept fields",
			fields: ec("X08", map[string]any{"ec_chief_complaint_snomed_ct": "4010232293"}), outcome: "rejected",
			failures: []string{"PID-001|ec_chief_complaint_snomed_ct"}},
		{name: "mixed CSV: postcode in the site code column", cite: "brief §1: remove full postcode; docs/deidentification.md Identifiers in kept fields",
			fields: with(baseAPC(uid("X09")), map[string]any{"dataset": "apc", "site_code": "HG11AA"}), outcome: "rejected",
			failures: []string{"PID-001|site_code"}},
		{name: "mixed CSV: emergency care arriving in the future", cite: "docs/specifications.md DATE-002",
			fields: ec("X07", map[string]any{"ec_arrival_date": "2999-01-01", "ec_departure_date": "2999-01-01"}), outcome: "rejected",
			failures: []string{"DATE-002|ec_arrival_date", "DATE-002|ec_departure_date"}},
	}
}

package dsa_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/load/dsa"
)

var known = dsa.Known{Datasets: []string{"apc", "outpatient", "emergency_care", "local_flow"},
	Columns: []string{"pseudo_nhs_number", "provider_code", "age_band", "hrg_code"}}

// doc is a valid agreement starting and expiring around today.
func doc(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	today := clocktest.Today(t)
	m := map[string]any{
		"id": "dsa-qf7", "version": "1", "recipient": map[string]any{"ods_code": "QF7", "name": "South Yorkshire ICB"},
		"purpose": "commissioning", "legal_basis": map[string]any{"text": "s.254", "reference": "DARS-1"},
		"datasets": []any{"apc"}, "columns": []any{"pseudo_nhs_number", "hrg_code"},
		"row_scope":       map[string]any{"commissioner_codes": []any{"02P", "02X"}},
		"activity_period": map[string]any{"from": "2025-04-01", "to": "2027-03-31"},
		"start_date":      dsa.Day(today.AddDate(0, 0, -10)),
		"expiry_date":     dsa.Day(today.AddDate(0, 0, 10)),
		"on_end":          "drop", "pseudonym_domain": map[string]any{"kind": "recipient"},
		"small_number_threshold": 5,
		"approvers":              []any{map[string]any{"name": "A", "role": "IG lead", "date": "2026-01-01"}},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAValidAgreementParses(t *testing.T) {
	a, err := dsa.Parse(doc(t, nil), known)
	if err != nil {
		t.Fatal(err)
	}
	if a.PseudonymDomain() != "recipient-qf7" || a.Database("dmic") != "dmic_r_dsa_qf7" {
		t.Errorf("domain %s, database %s", a.PseudonymDomain(), a.Database("dmic"))
	}
	if !a.Covers("apc", "02P", "2026-01-05") || a.Covers("apc", "03N", "2026-01-05") || a.Covers("outpatient", "02P", "2026-01-05") ||
		a.Covers("apc", "02P", "2024-01-05") {
		t.Error("Covers: wrong scope")
	}
}

// A malformed agreement is refused with every problem listed, each with its path.
func TestAMalformedAgreementListsEveryProblem(t *testing.T) {
	bad := doc(t, func(m map[string]any) {
		m["id"] = "Bad Id"
		delete(m, "purpose")
		m["recipient"] = map[string]any{"ods_code": "qf7"}
		m["legal_basis"] = map[string]any{"text": "s.254"}
		m["datasets"] = []any{"apc", "maternity"}
		m["columns"] = []any{"nhs_number"}
		m["activity_period"] = map[string]any{"from": "2027-04-01", "to": "2025-03-31"}
		m["expiry_date"] = "2020-13-01"
		m["pseudonym_domain"] = map[string]any{"kind": "project"}
		m["small_number_threshold"] = 0
		m["approvers"] = []any{}
		m["colour"] = "blue"
	})
	_, err := dsa.Parse(bad, known)
	if err == nil {
		t.Fatal("malformed agreement parsed")
	}
	for _, want := range []string{`$.id: "Bad Id" is not an id`, "$.purpose: required", `$.recipient.ods_code: "qf7" is not an ODS code`,
		"$.recipient.name: required", "$.legal_basis.reference: required", `$.datasets[1]: unknown data set "maternity"`,
		`$.columns[0]: "nhs_number" is not a column`, "$.activity_period.to: before from", `$.expiry_date: "2020-13-01" is not a date`,
		`$.pseudonym_domain.project: required with kind "project"`, "$.small_number_threshold: 0", "$.approvers: must not be empty",
		"$.colour: unknown field"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	if n := len(err.(dsa.Problems)); n != 13 {
		t.Errorf("%d problems, want 13:\n%v", n, err)
	}
}

func TestStatesFollowTheClock(t *testing.T) {
	today := clocktest.Today(t)
	a, err := dsa.Parse(doc(t, nil), known)
	if err != nil {
		t.Fatal(err)
	}
	set, created, err := dsa.Set{}.With(dsa.Loaded{Agreement: a})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	for _, c := range []struct {
		days int
		want string
	}{{-11, dsa.Pending}, {-10, dsa.Active}, {0, dsa.Active}, {10, dsa.Active}, {11, dsa.Expired}} {
		if got := set.State(set.All()[0], today.AddDate(0, 0, c.days)); got != c.want {
			t.Errorf("day %+d: %s, want %s", c.days, got, c.want)
		}
	}
	if len(set.InForce(today)) != 1 || len(set.Ended(today)) != 0 || len(set.Ended(today.AddDate(0, 0, 11))) != 1 {
		t.Error("in force / ended wrong")
	}
	// The same version with other content is refused; a new recipient for an id too.
	b, _ := dsa.Parse(doc(t, func(m map[string]any) { m["purpose"] = "other" }), known)
	if _, _, err := set.With(dsa.Loaded{Agreement: b}); err == nil {
		t.Error("same version, other content: accepted")
	}
	set, err = set.Revoke(dsa.Revocation{ID: "dsa-qf7", Reason: "ended early"})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.State(set.All()[0], today); got != dsa.Revoked {
		t.Errorf("after revocation: %s", got)
	}
	if len(set.InForce(today)) != 0 || len(set.Ended(today)) != 1 {
		t.Error("revoked agreement still in force")
	}
}

// The example agreements in the repository are valid.
func TestExampleAgreements(t *testing.T) {
	var schema struct {
		Properties map[string]struct {
			Items struct {
				Enum []string `json:"enum"`
			} `json:"items"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(dsa.Schema, &schema); err != nil {
		t.Fatalf("schema: %v", err)
	}
	k := dsa.Known{Datasets: schema.Properties["datasets"].Items.Enum, Columns: schema.Properties["columns"].Items.Enum}
	for _, f := range []string{"../../../deploy/agreements/qwe.json", "../../../deploy/agreements/qoq.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dsa.Parse(b, k); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

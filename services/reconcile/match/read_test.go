package match

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// The field numbers Read reads are those of the generated messages, by name.
func TestWireNumbers(t *testing.T) {
	desc := func(m proto.Message) protoreflect.MessageDescriptor { return m.ProtoReflect().Descriptor() }
	rec, hdr, act := desc(&dmicv1.DeidentifiedRecord{}), desc(&dmicv1.EnvelopeHeader{}), desc(&dmicv1.DeidentifiedActivity{})
	apc, op, ec, lf := desc(&dmicv1.ApcEpisode{}), desc(&dmicv1.OutpatientAttendance{}), desc(&dmicv1.EmergencyCareAttendance{}), desc(&dmicv1.LocalFlowRecord{})
	for _, c := range []struct {
		msg  protoreflect.MessageDescriptor
		name protoreflect.Name
		num  protowire.Number
	}{
		{rec, "header", recHeader}, {rec, "activity", recActivity}, {rec, "match_key", recMatchKey}, {rec, "assignment", recAssignment},
		{hdr, "record_key", hdrRecordKey}, {hdr, "dataset", hdrDataset}, {hdr, "source", hdrSource}, {hdr, "version", hdrVersion},
		{act, "update_type", actUpdateType}, {act, "provider_code", actProviderCode}, {act, "submitted_commissioner_code", actSubmittedCommission},
		{act, "pseudo_nhs_number", actPseudoNHSNumber}, {act, "pseudonym_key_version", actPseudonymKeyVersion},
		{act, "activity_date", actActivityDate}, {act, "point_of_delivery_code", actPointOfDelivery}, {act, "apc", actApc}, {act, "outpatient", actOutpatient},
		{act, "emergency_care", actEmergencyCare}, {act, "local_flow", actLocalFlow},
		{desc(&dmicv1.Assignment{}), "commissioner_code", asgCommissionerCode},
		{apc, "admission_method_code", apcAdmissionMethod}, {apc, "end_date_episode", apcEndDateEpisode},
		{apc, "patient_classification_code", apcPatientClass}, {apc, "treatment_function_code", apcTreatmentFunc},
		{apc, "primary_diagnosis_icd", apcPrimaryDiagnosis}, {apc, "primary_procedure_opcs", apcPrimaryProcedure}, {apc, "hrg_code", apcHRG},
		{op, "attended_or_did_not_attend_code", opAttended}, {op, "first_attendance_code", opFirstAttendance},
		{op, "treatment_function_code", opTreatmentFunc}, {op, "primary_procedure_opcs", opPrimaryProcedure}, {op, "hrg_code", opHRG},
		{ec, "ec_department_type", ecDepartmentType}, {ec, "hrg_code", ecHRG},
		{lf, "point_of_delivery_code", lfPointOfDelivery}, {lf, "treatment_function_code", lfTreatmentFunc}, {lf, "hrg_code", lfHRG},
		{lf, "price_pence", lfPricePence},
	} {
		f := c.msg.Fields().ByName(c.name)
		if f == nil {
			t.Errorf("%s has no field %s", c.msg.FullName(), c.name)
			continue
		}
		if f.Number() != c.num {
			t.Errorf("%s.%s is field %d; Read reads it as %d", c.msg.FullName(), c.name, f.Number(), c.num)
		}
	}
}

// decoded is what Read must make of a record: the record decoded by proto,
// its compared fields picked from the generated types.
func decoded(r *dmicv1.DeidentifiedRecord) Revision {
	h := func(s string) uint64 { return hash([]byte(s)) }
	a := r.GetActivity()
	rv := Revision{MatchKey: r.GetMatchKey(), Source: r.GetHeader().GetSource(), Dataset: r.GetHeader().GetDataset(),
		RecordKey: r.GetHeader().GetRecordKey(), Version: r.GetHeader().GetVersion(),
		Deleted:  a.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_DELETE,
		Provider: a.GetProviderCode(), ActivityDate: a.GetActivityDate(), KeyVersion: a.GetPseudonymKeyVersion()}
	f := &rv.Fields
	f[fActivityDate] = h(a.GetActivityDate())
	f[fPseudoNHSNumber] = h(a.GetPseudoNhsNumber())
	f[fCommissioner] = h(r.GetAssignment().GetCommissionerCode())
	f[fSubmittedCommissoner] = h(a.GetSubmittedCommissionerCode())
	// A CDS activity's point of delivery is the activity's; a local flow
	// line's is the line's own.
	f[fPointOfDelivery] = h(a.GetPointOfDeliveryCode())
	switch x := a.GetActivity().(type) {
	case *dmicv1.DeidentifiedActivity_Apc:
		f[fHRG] = h(x.Apc.GetHrgCode())
		f[fTreatmentFunction] = h(x.Apc.GetTreatmentFunctionCode())
		f[fPrimaryDiagnosis] = h(x.Apc.GetPrimaryDiagnosisIcd())
		f[fPrimaryProcedure] = h(x.Apc.GetPrimaryProcedureOpcs())
		f[fAdmissionMethod] = h(x.Apc.GetAdmissionMethodCode())
		f[fPatientClass] = h(x.Apc.GetPatientClassificationCode())
		f[fEndDateEpisode] = h(x.Apc.GetEndDateEpisode())
	case *dmicv1.DeidentifiedActivity_Outpatient:
		f[fHRG] = h(x.Outpatient.GetHrgCode())
		f[fTreatmentFunction] = h(x.Outpatient.GetTreatmentFunctionCode())
		f[fPrimaryProcedure] = h(x.Outpatient.GetPrimaryProcedureOpcs())
		f[fAttended] = h(x.Outpatient.GetAttendedOrDidNotAttendCode())
		f[fFirstAttendance] = h(x.Outpatient.GetFirstAttendanceCode())
	case *dmicv1.DeidentifiedActivity_EmergencyCare:
		f[fHRG] = h(x.EmergencyCare.GetHrgCode())
		f[fECDepartment] = h(x.EmergencyCare.GetEcDepartmentType())
	case *dmicv1.DeidentifiedActivity_LocalFlow:
		f[fHRG] = h(x.LocalFlow.GetHrgCode())
		f[fTreatmentFunction] = h(x.LocalFlow.GetTreatmentFunctionCode())
		f[fPointOfDelivery] = h(x.LocalFlow.GetPointOfDeliveryCode())
		if p := x.LocalFlow.GetPricePence(); p != 0 {
			f[fPrice] = h(strconv.FormatInt(p, 10))
		}
	}
	return rv
}

// randomRecord is a record with each field set or not, to a value from a
// small pool (so that equal values occur), of any kind of activity.
func randomRecord(rng *rand.Rand) *dmicv1.DeidentifiedRecord {
	pool := []string{"", "A", "HN12A", "2026-03-01", "36L", "é-ü", "v1", "apc|RXX|B1"}
	s := func() string { return pool[rng.IntN(len(pool))] }
	a := &dmicv1.DeidentifiedActivity{CdsUniqueIdentifier: s(), UpdateType: []dmicv1.UpdateType{0, 1, 9}[rng.IntN(3)],
		ProviderCode: s(), SiteCode: s(), SubmittedCommissionerCode: s(), PseudoNhsNumber: s(), PseudonymKeyVersion: s(),
		PseudonymAbsentReason: s(), AgeAtActivityYears: rng.Int32N(100), ActivityDate: s(), PseudonymDomain: s(),
		Demographics:        &dmicv1.Demographics{PersonGenderCode: s(), GeneralMedicalPracticeCode: s()},
		Residence:           &dmicv1.Residence{Lsoa_2021: s(), SubIcb: s(), ImdDecile: rng.Int32N(11)},
		DomainPseudonyms:    []*dmicv1.DomainPseudonym{{Domain: s(), Pseudonym: s(), KeyVersion: s()}},
		PointOfDeliveryCode: s()}
	switch rng.IntN(5) {
	case 0:
		a.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{HrgCode: s(), TreatmentFunctionCode: s(),
			PrimaryDiagnosisIcd: s(), PrimaryProcedureOpcs: s(), AdmissionMethodCode: s(), PatientClassificationCode: s(),
			EndDateEpisode: s(), EpisodeNumber: s(), SecondaryDiagnosesIcd: s()}}
	case 1:
		a.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{HrgCode: s(),
			TreatmentFunctionCode: s(), PrimaryProcedureOpcs: s(), AttendedOrDidNotAttendCode: s(), FirstAttendanceCode: s(),
			PrimaryDiagnosisIcd: s(), AppointmentDate: s()}}
	case 2:
		a.Activity = &dmicv1.DeidentifiedActivity_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{HrgCode: s(),
			EcDepartmentType: s(), EcArrivalDate: s()}}
	case 3:
		a.Activity = &dmicv1.DeidentifiedActivity_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{HrgCode: s(),
			TreatmentFunctionCode: s(), PointOfDeliveryCode: s(), PricePence: []int64{0, 1, -250, 123456789}[rng.IntN(4)],
			ActivityCount: rng.Int64N(3)}}
	}
	r := &dmicv1.DeidentifiedRecord{MatchKey: s(),
		Header: &dmicv1.EnvelopeHeader{RecordKey: s(), Dataset: dmicv1.Dataset(rng.IntN(6)), Source: dmicv1.Source(rng.IntN(4)),
			SubmissionId: s(), Version: rng.Uint64N(1 << 62), LineNumber: rng.Int64N(1000)},
		Activity:   a,
		Assignment: &dmicv1.Assignment{CommissionerCode: s(), Reason: s(), ReferenceVintages: []string{s(), s()}},
		Warnings:   []*dmicv1.Failure{{RuleId: s()}},
	}
	if rng.IntN(8) == 0 {
		r.Activity = nil
	}
	if rng.IntN(8) == 0 {
		r.Header = nil
	}
	if rng.IntN(8) == 0 {
		r.Assignment = nil
	}
	return r
}

// Read agrees with proto on records of every shape, and on what proto makes
// of two records' bytes one after the other: the second merged into the
// first (a nested message seen twice, a field's last value, another kind of
// activity replacing the first).
func TestReadAgreesWithProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 2026))
	check := func(i int, b []byte) {
		t.Helper()
		var r dmicv1.DeidentifiedRecord
		if err := proto.Unmarshal(b, &r); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var got Revision
		if err := Read(b, &got); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if want := decoded(&r); got != want {
			t.Errorf("case %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	for i := range 3000 {
		b, err := proto.Marshal(randomRecord(rng))
		if err != nil {
			t.Fatal(err)
		}
		check(i, b)
		more, err := proto.Marshal(randomRecord(rng))
		if err != nil {
			t.Fatal(err)
		}
		check(i, append(b, more...))
	}
}

// A record cut short is refused, as proto refuses it; so is bad UTF-8 in a
// field Read reads, and a record that is not protobuf at all.
func TestReadRefusesWhatProtoRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2026))
	for i := range 200 {
		b, err := proto.Marshal(randomRecord(rng))
		if err != nil {
			t.Fatal(err)
		}
		for cut := range len(b) {
			protoErr := proto.Unmarshal(b[:cut], &dmicv1.DeidentifiedRecord{})
			readErr := Read(b[:cut], &Revision{})
			if (protoErr == nil) != (readErr == nil) {
				t.Fatalf("case %d, %d of %d bytes: proto says %v, Read says %v", i, cut, len(b), protoErr, readErr)
			}
			if readErr != nil && !errors.Is(readErr, ErrWire) {
				t.Errorf("case %d: Read's error %v is not ErrWire", i, readErr)
			}
		}
	}
	badKey := protowire.AppendBytes(protowire.AppendTag(nil, recMatchKey, protowire.BytesType), []byte{'a', 0xff})
	if err := Read(badKey, &Revision{}); err == nil {
		t.Error("a match key of invalid UTF-8 was read")
	}
	if err := Read([]byte{0xff, 0x01}, &Revision{}); err == nil {
		t.Error("garbage was read")
	}
}

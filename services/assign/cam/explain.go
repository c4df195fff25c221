package cam

import (
	"slices"
	"strconv"
	"strings"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Compare lists the fields of the decision in which derived differs from
// stored: commissioner, step, reason code, service category, CAM version
// and CAM date. They agree when it lists none. The reference vintages are
// not part of the decision; a difference in them is listed last, when
// there is one, so that a changed decision shows the data it came from.
func Compare(stored, derived *dmicv1.Assignment) (diffs []*assignmentv1.FieldDifference, agree bool) {
	for _, f := range []struct{ name, s, d string }{
		{"commissioner_code", stored.GetCommissionerCode(), derived.GetCommissionerCode()},
		{"step", stored.GetStep(), derived.GetStep()},
		{"reason_code", stored.GetReasonCode(), derived.GetReasonCode()},
		{"service_category", stored.GetServiceCategory(), derived.GetServiceCategory()},
		{"cam_version", stored.GetCamVersion(), derived.GetCamVersion()},
		{"cam_date", stored.GetCamDate(), derived.GetCamDate()},
	} {
		if f.s != f.d {
			diffs = append(diffs, &assignmentv1.FieldDifference{Field: f.name, Stored: f.s, Derived: f.d})
		}
	}
	agree = len(diffs) == 0
	if !slices.Equal(stored.GetReferenceVintages(), derived.GetReferenceVintages()) {
		diffs = append(diffs, &assignmentv1.FieldDifference{Field: "reference_vintages",
			Stored: strings.Join(stored.GetReferenceVintages(), " "), Derived: strings.Join(derived.GetReferenceVintages(), " ")})
	}
	return diffs, agree
}

// ExplainRecord renders an explanation for dmicctl explain: the record, the
// stored decision, the path through the flow chart as derived again
// (Explain), and whether the two agree.
func ExplainRecord(r *assignmentv1.ExplainAssignmentResponse) string {
	var b strings.Builder
	b.WriteString("record " + r.GetRecordKey() + " version " + strconv.FormatUint(r.GetVersion(), 10) + ": " +
		r.GetDataset() + ", " + r.GetSource() + ", provider " + orNone(r.GetProviderCode()) + "\n")
	s := r.GetStored()
	b.WriteString("stored:  " + orNone(s.GetCommissionerCode()) + " by step " + orNone(s.GetStep()) + ", reason " + orNone(s.GetReasonCode()) +
		" (" + s.GetReason() + "), service category " + orNone(s.GetServiceCategory()) + ", CAM " + orNone(s.GetCamVersion()) + " at " + orNone(s.GetCamDate()) + "\n")
	for _, v := range s.GetReferenceVintages() {
		b.WriteString("  ref " + v + "\n")
	}
	b.WriteString("derived: " + Explain(r.GetDerived()))
	if r.GetAgrees() {
		b.WriteString("the derived decision agrees with the stored one\n")
	} else {
		b.WriteString("the derived decision DIFFERS from the stored one (reference data or rules changed since):\n")
	}
	for _, d := range r.GetDifferences() {
		b.WriteString("  " + d.GetField() + ": stored " + orNone(d.GetStored()) + ", derived " + orNone(d.GetDerived()) + "\n")
	}
	return b.String()
}

// Package didi de-identifies validated commissioning records to the DIDI standard: it replaces
// the NHS number with a keyed pseudonym, the date of birth with the age at
// the activity date, and the postcode with the areas it lies in and the
// deprivation (IMD) decile of its LSOA, and drops the local patient
// identifier. Month and year of birth are not derived: no data set dmic
// carries needs them, and the age at the activity date answers every
// question they would (see docs/deidentification.md). It is the only
// package that holds pseudonymisation keys; nothing downstream of it can
// re-identify.
package didi

import (
	"errors"
	"fmt"
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/nhs"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"google.golang.org/protobuf/proto"
)

// Reasons a DeidentifiedActivity has no pseudonym.
const (
	AbsentMissing = "missing" // no NHS number was submitted
	AbsentInvalid = "invalid" // not 10 digits, or fails the Modulus 11 check
)

// Residence notes: why no area (or only a country) could be derived.
const (
	NoteNoFixedAbode    = "no fixed abode"
	NoteNotKnown        = "not known"
	NoteEnglandNOS      = "England n.o.s."
	NoteScotlandNOS     = "Scotland n.o.s."
	NoteNorthernIreland = "Northern Ireland n.o.s."
	NoteWalesNOS        = "Wales n.o.s."
	NoteOverseas        = "overseas"
	NoteNotInReference  = "postcode not in reference data"
	// A live postcode the directory gives no area at all: a non-geographic
	// (large user) postcode, such as the NSPL's SR43 2AA.
	NoteNoArea          = "postcode has no area in reference data"
	NotePostcodeMissing = "postcode missing"
	NotePostcodeInvalid = "postcode invalid"
)

// pseudoPostcodes are what the ZZ99 pseudo-postcodes with a fixed meaning
// tell of residence. Any other pseudo-postcode is a country outside the UK.
var pseudoPostcodes = map[string]struct{ country, note string }{
	nhs.PseudoNoFixedAbode:    {"", NoteNoFixedAbode},
	nhs.PseudoNotKnown:        {"", NoteNotKnown},
	nhs.PseudoEngland:         {refdata.CountryEngland, NoteEnglandNOS},
	nhs.PseudoScotland:        {refdata.CountryScotland, NoteScotlandNOS},
	nhs.PseudoNorthernIreland: {refdata.CountryNorthernIreland, NoteNorthernIreland},
	nhs.PseudoWales:           {refdata.CountryWales, NoteWalesNOS},
}

// MatchKey is the key under which the local (provider) and national (SUS)
// copies of one activity meet for reconciliation:
//
//	<dataset>|<provider>|<CDS unique identifier>
//
// dataset is apc, outpatient, emergency_care, local_flow or unspecified;
// provider is the provider code upper-cased and trimmed, with a trailing
// "00" site suffix removed from a 5-character code (RVR00 -> RVR), because
// one copy may carry the trust code and the other its headquarters site;
// the CDS unique identifier is trimmed but otherwise as submitted (the CDS
// rules forbid it to contain an NHS number or local patient id). It holds
// nothing identifying, so it can key topics and tables. An empty CDS unique
// identifier gives "": such a record cannot be matched by this key.
func MatchKey(ds dmicv1.Dataset, providerCode, cdsUniqueID string) string {
	uid := strings.TrimSpace(cdsUniqueID)
	if uid == "" {
		return ""
	}
	p := strings.ToUpper(strings.TrimSpace(providerCode))
	if len(p) == 5 && strings.HasSuffix(p, "00") {
		p = p[:3]
	}
	return datasetName(ds) + "|" + p + "|" + uid
}

func datasetName(ds dmicv1.Dataset) string {
	if n := record.DatasetName(ds); n != "" {
		return n
	}
	return "unspecified"
}

var (
	errNilRecord  = errors.New("deid: record is nil")
	errNoActivity = errors.New("deid: record has no activity (only a delete may omit it)")
)

// IdentifierError is Deidentify's refusal of a record that carries one of
// its patient's identifiers (NHS number, local patient identifier, postcode)
// in a field that would outlive de-identification (record.IdentifierField):
// the record id, a spell or attendance id, a code list a provider misused.
// Nothing of such a record may pass, so it is refused whole, whatever
// validation made of it (a national record's warnings pass). It names the
// field, never the value.
type IdentifierError struct{ Field string }

func (e *IdentifierError) Error() string {
	return "deid: field " + e.Field + " holds a patient identifier (NHS number, local patient identifier or postcode)"
}

// Deidentifier turns validated records into de-identified activities. It
// holds Pseudonymisers, so it is NOT safe for concurrent use: make one per
// goroutine (they can share the KeySource and the Reference).
type Deidentifier struct {
	keys   KeySource
	ring   *KeyRing              // the ring pseudo and others were made from
	pseudo *Pseudonymiser        // analytics
	others []domainPseudonymiser // every other domain of ring
	ref    *refdata.Reference
	digits [10]byte
}

// NewDeidentifier returns a Deidentifier pseudonymising with the active keys
// of the ring keys gives (asked again on every record, so a rotation applies
// from the next record) and reference data ref (ref may be nil: residence
// then holds only the sector and a note).
func NewDeidentifier(keys KeySource, ref *refdata.Reference) *Deidentifier {
	d := &Deidentifier{keys: keys, ref: ref}
	d.use(keys.KeyRing())
	return d
}

// Deidentify builds the de-identified activity of a validated record.
//
// Kept: the record's non-identifying header fields, demographics (sex,
// ethnicity, GP practice code) and the activity itself (a deep copy).
// Derived: the pseudonym (only for a 10-digit, Modulus-11-valid NHS number,
// else pseudonym_absent_reason), the age at the activity date in years, in
// weeks under one, and its band, and the areas of residence, the IMD decile
// of the LSOA and the postcode sector. Dropped: NHS number, local patient identifier, date of birth,
// postcode. A missing or impossible date of birth leaves the age unknown:
// age_band "" and 0 years (validation, not this stage, rejects records).
//
// It returns an error when the record cannot be read as an activity of
// dataset ds (nil, no activity, or an activity of another dataset; ds
// DATASET_UNSPECIFIED accepts any), and an *IdentifierError when a field it
// would keep holds a patient identifier. Errors never contain field values.
func (d *Deidentifier) Deidentify(ds dmicv1.Dataset, r *dmicv1.CommissioningRecord) (*dmicv1.DeidentifiedActivity, error) {
	if r == nil {
		return nil, errNilRecord
	}
	out := &dmicv1.DeidentifiedActivity{
		CdsUniqueIdentifier:        r.GetCdsUniqueIdentifier(),
		UpdateType:                 r.GetUpdateType(),
		ApplicableDateTime:         r.GetApplicableDateTime(),
		ProviderCode:               r.GetProviderCode(),
		SiteCode:                   r.GetSiteCode(),
		SubmittedCommissionerCode:  r.GetCommissionerCode(),
		AdministrativeCategoryCode: r.GetAdministrativeCategoryCode(),
		OverseasVisitorStatusCode:  r.GetOverseasVisitorStatusCode(),
		// The CAM inputs: codes about the service, not the patient.
		OverseasVisitorChargingCategory: r.GetOverseasVisitorChargingCategory(),
		ServiceCode:                     r.GetServiceCode(),
		CommissionedServiceCategoryCode: r.GetCommissionedServiceCategoryCode(),
		PointOfDeliveryCode:             r.GetPointOfDeliveryCode(),
		LocalPublicHealthIndicator:      r.GetLocalPublicHealthIndicator(),
	}

	var got dmicv1.Dataset
	switch a := r.GetActivity().(type) {
	case *dmicv1.CommissioningRecord_Apc:
		got = dmicv1.Dataset_DATASET_APC
		out.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: clone(a.Apc)}
	case *dmicv1.CommissioningRecord_Outpatient:
		got = dmicv1.Dataset_DATASET_OUTPATIENT
		out.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: clone(a.Outpatient)}
	case *dmicv1.CommissioningRecord_EmergencyCare:
		got = dmicv1.Dataset_DATASET_EMERGENCY_CARE
		out.Activity = &dmicv1.DeidentifiedActivity_EmergencyCare{EmergencyCare: clone(a.EmergencyCare)}
	case *dmicv1.CommissioningRecord_LocalFlow:
		got = dmicv1.Dataset_DATASET_LOCAL_FLOW
		out.Activity = &dmicv1.DeidentifiedActivity_LocalFlow{LocalFlow: clone(a.LocalFlow)}
	case nil:
		if r.GetUpdateType() != dmicv1.UpdateType_UPDATE_TYPE_DELETE {
			return nil, errNoActivity
		}
	default:
		return nil, fmt.Errorf("deid: record has an activity of unknown type %T", a)
	}
	if got != dmicv1.Dataset_DATASET_UNSPECIFIED && ds != dmicv1.Dataset_DATASET_UNSPECIFIED && got != ds {
		return nil, fmt.Errorf("deid: record holds a %s activity but the dataset is %s", datasetName(got), datasetName(ds))
	}
	if f := record.IdentifierField(r); f != "" {
		return nil, &IdentifierError{Field: f}
	}
	// The activity date, by its one rule (package record), which
	// validation's DOB-003 also reads: the age and the postcode are taken
	// as at this date.
	out.ActivityDate = record.ActivityDate(r)

	// Copied field by field, not cloned: a field added to Demographics later
	// must be judged non-identifying before it is let through.
	if dem := r.GetDemographics(); dem != nil {
		out.Demographics = &dmicv1.Demographics{
			PersonGenderCode:           dem.GetPersonGenderCode(),
			EthnicCategory:             dem.GetEthnicCategory(),
			GeneralMedicalPracticeCode: dem.GetGeneralMedicalPracticeCode(),
		}
	}

	pt := r.GetPatient()
	out.NhsNumberStatusIndicatorCode = pt.GetNhsNumberStatusIndicatorCode()
	d.pseudonymise(pt.GetNhsNumber(), out)

	if years, weeks, err := AgeAt(pt.GetPersonBirthDate(), out.ActivityDate); err == nil {
		out.AgeAtActivityYears = int32(years)
		out.AgeAtActivityWeeks = int32(weeks)
		out.AgeBand = AgeBand(years)
	}

	out.Residence = d.residence(pt.GetPostcodeOfUsualAddress())
	return out, nil
}

// pseudonymise sets the analytics pseudonym and the other domains' ones, or
// none at all (in any domain) with the reason.
func (d *Deidentifier) pseudonymise(number string, out *dmicv1.DeidentifiedActivity) {
	out.PseudonymDomain = DomainAnalytics
	if strings.TrimSpace(number) == "" {
		out.PseudonymAbsentReason = AbsentMissing
		return
	}
	if !nhs.NumberValid(number) {
		out.PseudonymAbsentReason = AbsentInvalid
		return
	}
	copy(d.digits[:], number)
	if r := d.keys.KeyRing(); r != d.ring {
		d.use(r)
	}
	out.PseudoNhsNumber = d.pseudo.of(&d.digits)
	out.PseudonymKeyVersion = d.pseudo.KeyVersion()
	d.domainPseudonyms(out)
}

// residence derives the areas of a postcode from the postcode directory's
// row for it, live or terminated (refdata.Reference.PostcodeOfResidence):
// a terminated postcode is placed in the areas it lay in. It never copies
// the postcode: only reference-data codes, a fixed note and the sector
// leave it.
func (d *Deidentifier) residence(raw string) *dmicv1.Residence {
	if strings.TrimSpace(raw) == "" {
		return &dmicv1.Residence{Note: NotePostcodeMissing}
	}
	// The form validate accepted and rewrote the postcode to: a postcode
	// validation calls malformed (a warning on a national record) gets no
	// sector and no look-up here either.
	pc, ok := nhs.NormalisePostcode(raw)
	if !ok {
		return &dmicv1.Residence{Note: NotePostcodeInvalid}
	}
	if nhs.IsPseudoPostcode(pc) {
		// A pseudo postcode names a country (or no fixed abode), never a
		// person, so it is kept: CAM reads it (steps B, B-2, WB-3, A&E-1).
		if p, ok := pseudoPostcodes[pc]; ok {
			return &dmicv1.Residence{Country: p.country, Note: p.note, PseudoPostcode: pseudoCode(pc)}
		}
		// "ZZ99 nXZ": X stands for a letter naming the country.
		return &dmicv1.Residence{Note: NoteOverseas, PseudoPostcode: pseudoCode(pc)}
	}
	res := &dmicv1.Residence{PostcodeSector: nhs.PostcodeSector(pc)}
	if d.ref == nil {
		res.Note = NoteNotInReference
		return res
	}
	// A prison, IRC or secure-estate site (CAM Appendix F): its code and
	// hub, never the postcode itself.
	if j, ok := d.ref.JusticeFacilityByPostcode(pc); ok {
		res.JusticeFacilityCode, res.JusticeHub = j.Code, j.Hub
		if res.JusticeFacilityCode == "" {
			res.JusticeFacilityCode = j.Name
		}
	}
	a, ok := d.ref.PostcodeOfResidence(pc)
	if !ok {
		res.Note = NoteNotInReference
		return res
	}
	res.Lsoa_2011, res.Lsoa_2021 = a.LSOA11, a.LSOA21
	res.Msoa_2011, res.Msoa_2021 = a.MSOA11, a.MSOA21
	res.LocalAuthority = a.LocalAuthority
	res.SubIcb, res.Icb = a.SubICB, a.ICB
	res.Country = a.Country
	// 0 when the reference data has no IMD file or no decile for the LSOA
	// (IMD 2025 covers English LSOAs only): a decile is never guessed.
	res.ImdDecile = int32(a.IMDDecile)
	res.HealthArea, res.Region = a.SubICBONS, a.RegionONS
	if a.Country == "" && a.LSOA11 == "" && a.LSOA21 == "" && a.SubICBONS == "" {
		// Found, but nothing to place it by: say so, as for a postcode not
		// found, rather than leave a residence with no area and no note.
		res.Note = NoteNoArea
	}
	return res
}

// pseudoCode is the inward part of a ZZ99 pseudo postcode ("3VZ" of
// "ZZ99 3VZ"): it names the country, and without the "ZZ99" it does not
// look like a postcode to anything that scans the de-identified topics.
func pseudoCode(pc string) string { return strings.TrimPrefix(pc, "ZZ99 ") }

// clone deep-copies an activity message, so the output shares nothing with
// the (identifier-bearing) input record.
func clone[M proto.Message](m M) M {
	return proto.Clone(m).(M)
}

// String keeps the key material out of logs if a Deidentifier is printed.
func (d *Deidentifier) String() string {
	return fmt.Sprintf("deid.Deidentifier{KeyVersion: %q}", d.pseudo.KeyVersion())
}

// GoString implements fmt.GoStringer for %#v.
func (d *Deidentifier) GoString() string { return d.String() }

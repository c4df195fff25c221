package chstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// StoredActivity is the latest row of a record in the activity table,
// rebuilt as the de-identified record CAM was given (header, activity) and
// the decision stored with it (Record.Assignment, without a trail: the
// trail is not stored, it is derived again).
//
// The activity holds what the activity table holds, every CAM input among it
// (docs/commissioner-assignment.md, Explain); never a patient identifier,
// since the table has none.
type StoredActivity struct {
	Record  *dmicv1.DeidentifiedRecord
	Deleted bool
}

// ErrRecordNotFound is returned (wrapped) when the activity table has no row
// of a record key.
var ErrRecordNotFound = errors.New("record not found")

// camRow is one activity row as scanned: a target per selected column.
type camRow struct {
	recordKey, dataset, source, submitter, uid, provider, site, matchKey string
	version                                                              uint64
	deleted                                                              uint8
	activityDate                                                         time.Time
	dateSource, submittedDate                                            string
	gp                                                                   string
	la, subICB, icb, country, note, sector, pseudo, area, region         string
	justiceSite, justiceHub                                              string
	submittedComm, adminCat, osvStatus, osvCharging, serviceCode, pod    string
	category, publicHealth                                               string
	comm, method, commType, ruleID, camVersion, step, reasonCode         string
	reason, serviceCategory, camDate                                     string
	vintages                                                             []string
	cdsType, episode, admission, sourceOfAdmission                       string
	dischargeMethod, dischargeDest, classification, tfc                  string
	primaryDiag, primaryProc, hrg, attended, first, priority             string
	ecDept, ecComplaint, ecTime, localPOD                                string
	price, count                                                         int64
	start, end, spellStart, discharge                                    *time.Time
	secondaryDiags, secondaryProcs                                       []string
}

// camColumns are the selected columns and where each is scanned, in order.
func (r *camRow) columns() ([]string, []any) {
	list := []struct {
		name string
		dst  any
	}{
		{"record_key", &r.recordKey}, {"version", &r.version}, {"deleted", &r.deleted}, {"dataset", &r.dataset},
		{"source", &r.source}, {"submitter_org_code", &r.submitter}, {"cds_unique_identifier", &r.uid},
		{"provider_code", &r.provider}, {"site_code", &r.site}, {"match_key", &r.matchKey},
		{"activity_date", &r.activityDate}, {"activity_date_source", &r.dateSource}, {"activity_date_submitted", &r.submittedDate},
		{"general_medical_practice_code", &r.gp},
		{"local_authority", &r.la}, {"residence_sub_icb", &r.subICB}, {"residence_icb", &r.icb},
		{"residence_country", &r.country}, {"residence_note", &r.note}, {"postcode_sector", &r.sector},
		{"residence_pseudo_postcode", &r.pseudo}, {"residence_health_area", &r.area}, {"residence_region", &r.region},
		{"justice_facility_code", &r.justiceSite}, {"justice_hub", &r.justiceHub},
		{"submitted_commissioner_code", &r.submittedComm}, {"administrative_category_code", &r.adminCat},
		{"overseas_visitor_status_code", &r.osvStatus}, {"overseas_visitor_charging_category", &r.osvCharging},
		{"service_code", &r.serviceCode}, {"point_of_delivery", &r.pod},
		{"commissioned_service_category_code", &r.category}, {"local_public_health_indicator", &r.publicHealth},
		{"commissioner_code", &r.comm}, {"assignment_method", &r.method}, {"commissioner_type", &r.commType},
		{"cam_rule_id", &r.ruleID}, {"cam_version", &r.camVersion}, {"cam_step", &r.step},
		{"cam_reason_code", &r.reasonCode}, {"cam_reason", &r.reason}, {"cam_service_category", &r.serviceCategory},
		{"cam_date", &r.camDate}, {"cam_reference_vintages", &r.vintages},
		{"cds_type", &r.cdsType}, {"episode_number", &r.episode}, {"admission_method_code", &r.admission},
		{"source_of_admission_code", &r.sourceOfAdmission}, {"discharge_method_code", &r.dischargeMethod},
		{"discharge_destination_code", &r.dischargeDest}, {"patient_classification_code", &r.classification},
		{"treatment_function_code", &r.tfc}, {"primary_diagnosis_icd", &r.primaryDiag},
		{"primary_procedure_opcs", &r.primaryProc}, {"hrg_code", &r.hrg},
		{"attended_or_did_not_attend_code", &r.attended}, {"first_attendance_code", &r.first},
		{"priority_type_code", &r.priority}, {"ec_department_type", &r.ecDept},
		{"ec_chief_complaint_snomed_ct", &r.ecComplaint}, {"ec_arrival_time", &r.ecTime},
		{"point_of_delivery_code", &r.localPOD}, {"price_pence", &r.price}, {"activity_count", &r.count},
		{"start_date", &r.start}, {"end_date", &r.end}, {"spell_start_date", &r.spellStart}, {"discharge_date", &r.discharge},
		{"secondary_diagnoses_icd", &r.secondaryDiags}, {"secondary_procedures_opcs", &r.secondaryProcs},
	}
	names := make([]string, len(list))
	dsts := make([]any, len(list))
	for i, c := range list {
		names[i], dsts[i] = c.name, c.dst
	}
	return names, dsts
}

func dateString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.DateOnly)
}

// stored is the row as the de-identified record it was written from (the
// one home of this rebuild: explain and re-runs both use it).
func (r *camRow) stored() StoredActivity {
	ds, _ := record.ParseDataset(r.dataset)
	src, _ := record.ParseSource(r.source)
	date := r.submittedDate
	if date == "" && r.dateSource == dateFromRecord {
		// A row written before activity_date_submitted existed: the
		// record's date as activity_date kept it.
		date = r.activityDate.Format(time.DateOnly)
	}
	a := &dmicv1.DeidentifiedActivity{
		CdsUniqueIdentifier: r.uid, ProviderCode: r.provider, SiteCode: r.site,
		SubmittedCommissionerCode: r.submittedComm, AdministrativeCategoryCode: r.adminCat,
		OverseasVisitorStatusCode: r.osvStatus, ActivityDate: date,
		Demographics: &dmicv1.Demographics{GeneralMedicalPracticeCode: r.gp},
		Residence: &dmicv1.Residence{LocalAuthority: r.la, SubIcb: r.subICB, Icb: r.icb, Country: r.country, Note: r.note,
			PostcodeSector: r.sector, PseudoPostcode: r.pseudo, HealthArea: r.area, Region: r.region,
			JusticeFacilityCode: r.justiceSite, JusticeHub: r.justiceHub},
		OverseasVisitorChargingCategory: r.osvCharging, ServiceCode: r.serviceCode,
		CommissionedServiceCategoryCode: r.category, PointOfDeliveryCode: r.pod, LocalPublicHealthIndicator: r.publicHealth,
	}
	if r.deleted == 1 {
		a.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	}
	diags, procs := strings.Join(r.secondaryDiags, ";"), strings.Join(r.secondaryProcs, ";")
	switch ds {
	case dmicv1.Dataset_DATASET_APC:
		a.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{
			CdsType: r.cdsType, EpisodeNumber: r.episode, StartDateHospitalProviderSpell: dateString(r.spellStart),
			AdmissionMethodCode: r.admission, SourceOfAdmissionCode: r.sourceOfAdmission,
			StartDateEpisode: dateString(r.start), EndDateEpisode: dateString(r.end),
			DischargeDateHospitalProviderSpell: dateString(r.discharge), DischargeMethodCode: r.dischargeMethod,
			DischargeDestinationCode: r.dischargeDest, PatientClassificationCode: r.classification,
			TreatmentFunctionCode: r.tfc, PrimaryDiagnosisIcd: r.primaryDiag, PrimaryProcedureOpcs: r.primaryProc,
			HrgCode: r.hrg, SecondaryDiagnosesIcd: diags, SecondaryProceduresOpcs: procs,
		}}
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		a.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{
			AppointmentDate: dateString(r.start), AttendedOrDidNotAttendCode: r.attended, FirstAttendanceCode: r.first,
			TreatmentFunctionCode: r.tfc, PriorityTypeCode: r.priority, PrimaryProcedureOpcs: r.primaryProc, HrgCode: r.hrg,
			PrimaryDiagnosisIcd: r.primaryDiag, SecondaryDiagnosesIcd: diags, SecondaryProceduresOpcs: procs,
		}}
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		a.Activity = &dmicv1.DeidentifiedActivity_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{
			EcArrivalDate: dateString(r.start), EcArrivalTime: r.ecTime, EcDepartmentType: r.ecDept,
			EcChiefComplaintSnomedCt: r.ecComplaint, EcDepartureDate: dateString(r.end), HrgCode: r.hrg,
		}}
	case dmicv1.Dataset_DATASET_LOCAL_FLOW:
		a.Activity = &dmicv1.DeidentifiedActivity_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{
			ActivityDate: dateString(r.start), PointOfDeliveryCode: r.localPOD, TreatmentFunctionCode: r.tfc,
			HrgCode: r.hrg, PricePence: r.price, ActivityCount: r.count,
		}}
	}
	return StoredActivity{Deleted: r.deleted == 1, Record: &dmicv1.DeidentifiedRecord{
		Header:   &dmicv1.EnvelopeHeader{RecordKey: r.recordKey, Version: r.version, Dataset: ds, Source: src, SubmitterOrgCode: r.submitter},
		Activity: a, MatchKey: r.matchKey,
		Assignment: &dmicv1.Assignment{CommissionerCode: r.comm, AssignmentMethod: r.method, CommissionerType: r.commType,
			RuleId: r.ruleID, CamVersion: r.camVersion, Step: r.step, ReasonCode: r.reasonCode, Reason: r.reason,
			ServiceCategory: r.serviceCategory, ReferenceVintages: r.vintages, CamDate: r.camDate},
	}}
}

// ReadActivity is the latest version of the record keyed recordKey (its
// highest version, which may be a delete: Deleted says so), rebuilt as
// StoredActivity says. No row: ErrRecordNotFound.
func ReadActivity(ctx context.Context, conn driver.Conn, db, recordKey string) (StoredActivity, error) {
	if err := validateDatabase(db); err != nil {
		return StoredActivity{}, err
	}
	var r camRow
	names, dsts := r.columns()
	q := fmt.Sprintf("SELECT %s FROM %s.%s WHERE record_key = ? ORDER BY version DESC LIMIT 1",
		strings.Join(names, ", "), db, TableActivity)
	if err := conn.QueryRow(ctx, q, recordKey).Scan(dsts...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return StoredActivity{}, fmt.Errorf("%w: no activity row has record key %q", ErrRecordNotFound, recordKey)
		}
		return StoredActivity{}, fmt.Errorf("read record %q: %w", recordKey, err)
	}
	return r.stored(), nil
}

// ScanActivity calls fn with the current records (the latest version of
// each, deletes left out) whose CAM date is from..to (YYYY-MM-DD, both
// included), batch at a time: the rows stream from the server, so a year of
// activity is never held at once. fn may keep the records it is given.
func ScanActivity(ctx context.Context, conn driver.Conn, db, from, to string, batch int, fn func([]StoredActivity) error) error {
	if err := validateDatabase(db); err != nil {
		return err
	}
	if batch < 1 {
		batch = 1
	}
	var r camRow
	names, dsts := r.columns()
	// FINAL before WHERE: a record's latest version decides whether it is
	// in the period and not deleted (as activity_current reads it).
	q := fmt.Sprintf("SELECT %s FROM %s.%s FINAL WHERE deleted = 0 AND cam_date >= ? AND cam_date <= ?",
		strings.Join(names, ", "), db, TableActivity)
	rows, err := conn.Query(ctx, q, from, to)
	if err != nil {
		return fmt.Errorf("read activity with CAM dates %s to %s: %w", from, to, err)
	}
	defer rows.Close()
	buf := make([]StoredActivity, 0, batch)
	for rows.Next() {
		r = camRow{}
		if err := rows.Scan(dsts...); err != nil {
			return fmt.Errorf("read activity with CAM dates %s to %s: %w", from, to, err)
		}
		buf = append(buf, r.stored())
		if len(buf) == batch {
			if err := fn(buf); err != nil {
				return err
			}
			buf = make([]StoredActivity, 0, batch)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read activity with CAM dates %s to %s: %w", from, to, err)
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

// ActivityReader reads stored activity for a service whose main work does
// not need ClickHouse (assign: explain and re-runs): it connects on first
// use, and again after a failed attempt, so that the service starts and
// assigns while ClickHouse is away.
type ActivityReader struct {
	lazy lazyConn
}

// NewActivityReader reads the database cfg names, as cfg's user (assign:
// the read-only dmic_reader).
func NewActivityReader(cfg Config) *ActivityReader { return &ActivityReader{lazy: lazyConn{cfg: cfg}} }

// ReadActivity is ReadActivity on the configured database.
func (r *ActivityReader) ReadActivity(ctx context.Context, recordKey string) (StoredActivity, error) {
	conn, err := r.lazy.get(ctx)
	if err != nil {
		return StoredActivity{}, err
	}
	return ReadActivity(ctx, conn, r.lazy.cfg.Database, recordKey)
}

// ScanActivity is ScanActivity on the configured database.
func (r *ActivityReader) ScanActivity(ctx context.Context, from, to string, batch int, fn func([]StoredActivity) error) error {
	conn, err := r.lazy.get(ctx)
	if err != nil {
		return err
	}
	return ScanActivity(ctx, conn, r.lazy.cfg.Database, from, to, batch, fn)
}

// Close closes the connection, if one was made.
func (r *ActivityReader) Close() error { return r.lazy.close() }

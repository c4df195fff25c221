package chstoretest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// SmallNumbersActivity returns batches of de-identified activity, to be
// written in order, whose combinations of quasi-identifiers (source, activity
// month, age band, sex, LSOA) have known sizes. Current records per
// combination, by provider RR8 (APC) unless noted:
//
//	provider 2025-03 65-69 sex 2 E01000001  2: one RR8 APC + one RJ7 outpatient, 2 patients
//	provider 2025-03 65-69 sex 1 E01000001  4: 2 patients
//	provider 2025-03 65-69 sex 2 E01000002  5: 5 patients
//	provider 2025-04 0     sex 1 ""         2: no fixed abode; one without a pseudonym, so 1 patient
//	provider 2025-04 30-34 sex 2 E01009999  5: 3 with only an LSOA 2011, 2 with it as LSOA 2021
//	national 2025-05 90+   sex 9 E01000003  2: 2 patients
//	provider 2025-05 90+   sex 9 E01000003  6: 6 patients
//	provider 2025-06 50-54 sex 1 E01000005  4: 5 written, then one revised into July
//	provider 2025-07 50-54 sex 1 E01000005  1: that revision
//
// and one record in provider 2025-03 40-44 sex 2 E01000004 that a later
// batch deletes, so that combination has no current record.
func SmallNumbersActivity() [][]*dmicv1.DeidentifiedRecord {
	var first, second []*dmicv1.DeidentifiedRecord
	n := 0
	add := func(batch *[]*dmicv1.DeidentifiedRecord, c cell, count int, patient func(i int) string) {
		for i := range count {
			n++
			*batch = append(*batch, c.record(fmt.Sprintf("K%03d", n), 1, patient(i)))
		}
	}
	each := func(prefix string) func(int) string {
		return func(i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
	}
	alternate := func(prefix string) func(int) string {
		return func(i int) string { return fmt.Sprintf("%s-%d", prefix, i%2) }
	}

	a := cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-03", band: "65-69", sex: "2", lsoa21: "E01000001", lsoa11: "E01000001"}
	add(&first, a, 1, each("a"))
	rj7 := a
	rj7.provider, rj7.outpatient = "RJ7", true
	add(&first, rj7, 1, each("a-rj7"))
	add(&first, cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-03", band: "65-69", sex: "1", lsoa21: "E01000001", lsoa11: "E01000001"}, 4, alternate("b"))
	add(&first, cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-03", band: "65-69", sex: "2", lsoa21: "E01000002", lsoa11: "E01000002"}, 5, each("c"))
	add(&first, cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-04", band: "0", sex: "1", note: "no fixed abode"}, 2,
		func(i int) string {
			if i == 0 {
				return "" // no valid NHS number: no pseudonym
			}
			return "d"
		})
	add(&first, cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-04", band: "30-34", sex: "2", lsoa11: "E01009999"}, 3, each("e11"))
	add(&first, cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-04", band: "30-34", sex: "2", lsoa21: "E01009999", lsoa11: "E01001111"}, 2, each("e21"))
	f := cell{source: dmicv1.Source_SOURCE_NATIONAL, month: "2025-05", band: "90+", sex: "9", lsoa21: "E01000003", lsoa11: "E01000003"}
	add(&first, f, 2, each("f"))
	f.source = dmicv1.Source_SOURCE_PROVIDER
	add(&first, f, 6, each("f"))

	i := cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-06", band: "50-54", sex: "1", lsoa21: "E01000005", lsoa11: "E01000005"}
	add(&first, i, 5, each("i"))
	j := i
	j.month = "2025-07"
	second = append(second, j.record(fmt.Sprintf("K%03d", n), 2, "i-4")) // the last of i's, revised

	g := cell{source: dmicv1.Source_SOURCE_PROVIDER, month: "2025-03", band: "40-44", sex: "2", lsoa21: "E01000004", lsoa11: "E01000004"}
	n++
	key := fmt.Sprintf("K%03d", n)
	first = append(first, g.record(key, 1, "g"))
	del := g.record(key, 2, "g")
	del.Activity.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	second = append(second, del)
	return [][]*dmicv1.DeidentifiedRecord{first, second}
}

// cell is one combination of quasi-identifiers.
type cell struct {
	source               dmicv1.Source
	provider             string // RR8 unless set
	outpatient           bool   // APC unless set
	month                string // YYYY-MM; the activity is on the 14th
	band, sex            string
	lsoa21, lsoa11, note string
}

func (c cell) record(key string, version uint64, patient string) *dmicv1.DeidentifiedRecord {
	provider := c.provider
	if provider == "" {
		provider = "RR8"
	}
	submitter := provider
	if c.source == dmicv1.Source_SOURCE_NATIONAL {
		submitter = "SUS"
	}
	date := c.month + "-14"
	ds := dmicv1.Dataset_DATASET_APC
	if c.outpatient {
		ds = dmicv1.Dataset_DATASET_OUTPATIENT
	}
	a := &dmicv1.DeidentifiedActivity{
		CdsUniqueIdentifier: "U" + key,
		UpdateType:          dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
		ProviderCode:        provider,
		AgeBand:             c.band,
		ActivityDate:        date,
		Demographics:        &dmicv1.Demographics{PersonGenderCode: c.sex},
		Residence:           &dmicv1.Residence{Lsoa_2021: c.lsoa21, Lsoa_2011: c.lsoa11, Note: c.note},
	}
	if patient == "" {
		a.PseudonymAbsentReason = "invalid"
	} else {
		sum := sha256.Sum256([]byte("patient:" + patient))
		a.PseudoNhsNumber, a.PseudonymKeyVersion = hex.EncodeToString(sum[:]), "k1"
	}
	if c.outpatient {
		a.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AppointmentDate: date}}
	} else {
		a.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{StartDateEpisode: date, EndDateEpisode: date}}
	}
	return &dmicv1.DeidentifiedRecord{
		Header: &dmicv1.EnvelopeHeader{
			RecordKey:        submitter + "|" + key,
			Dataset:          ds,
			Source:           c.source,
			SubmitterOrgCode: submitter,
			ReceivedTime:     timestamppb.New(time.Date(2025, 7, 1, 9, 0, 0, 0, time.UTC)),
			Version:          version,
		},
		Activity: a,
		MatchKey: record.DatasetName(ds) + "|" + provider + "|U" + key,
	}
}

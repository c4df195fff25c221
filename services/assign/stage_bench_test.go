package assign_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// BenchmarkProcess is the assign stage per record: decode the
// de-identified record, assign, encode the assigned record.
func BenchmarkProcess(b *testing.B) {
	s := newStage(b)
	var msgs []pipeline.Message
	for _, gp := range []string{"H85030", "V81999", "B84019"} {
		rec := deidentified(gp)
		rec.Activity.ProviderCode = "RVR"
		rec.Activity.Residence = &dmicv1.Residence{Country: "E92000001", SubIcb: "36L", Icb: "QWE", LocalAuthority: "E09000029", Lsoa_2011: "E01004128", Lsoa_2021: "E01004128", PostcodeSector: "SM5 1"}
		rec.Activity.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "130", HospitalProviderSpellNumber: "S1", EpisodeNumber: "1",
			StartDateHospitalProviderSpell: "2026-01-01", DischargeDateHospitalProviderSpell: "2026-01-05", StartDateEpisode: "2026-01-01", EndDateEpisode: "2026-01-05",
			AdmissionMethodCode: "21", SourceOfAdmissionCode: "19", TreatmentFunctionCode: "300", PrimaryDiagnosisIcd: "I219", HrgCode: "EB10A"}}
		v, err := proto.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, pipeline.Message{Topic: topics.Deidentified, Key: []byte("k"), Value: v})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Process(context.Background(), msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

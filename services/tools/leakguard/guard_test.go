package leakguard_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/leakguard"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

const refDir = "../../../reference/sample"

// brokenStage passes the postcode of usual address through to the
// de-identified record (in the residence note): the kind of mistake the
// guard exists to catch.
type brokenStage struct{ real pipeline.Processor }

func (b brokenStage) Process(ctx context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	outs, err := b.real.Process(ctx, m)
	if err != nil {
		return outs, err
	}
	in := &dmicv1.ValidatedRecord{}
	if err := proto.Unmarshal(m.Value, in); err != nil {
		return nil, err
	}
	for i, o := range outs {
		r := &dmicv1.DeidentifiedRecord{}
		if err := proto.Unmarshal(o.Value, r); err != nil {
			return nil, err
		}
		if r.Activity.Residence == nil {
			r.Activity.Residence = &dmicv1.Residence{}
		}
		r.Activity.Residence.Note = in.GetRecord().GetPatient().GetPostcodeOfUsualAddress()
		v, err := proto.Marshal(r)
		if err != nil {
			return nil, err
		}
		outs[i].Value = v
	}
	return outs, nil
}

// validated turns generated provider records into validate's output.
func validated(t *testing.T, items []synth.Item) []pipeline.Message {
	t.Helper()
	var msgs []pipeline.Message
	for i, it := range items {
		if it.Source != dmicv1.Source_SOURCE_PROVIDER || len(it.Bad) > 0 {
			continue
		}
		rec, ds, err := record.DecodeJSON(it.JSON, dmicv1.Dataset_DATASET_UNSPECIFIED)
		if err != nil {
			t.Fatal(err)
		}
		key := envelope.RecordKey(it.Submitter, it.Source, ds, rec)
		v, err := proto.Marshal(&dmicv1.ValidatedRecord{Record: rec, Header: &dmicv1.EnvelopeHeader{
			RecordKey: key, Dataset: ds, Source: it.Source, SubmitterOrgCode: it.Submitter, SubmissionId: "sub-leak",
			LineNumber: int64(i + 1), Version: uint64(i + 1),
		}})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, pipeline.Message{Topic: topics.Validated, Key: []byte(key), Value: v, Offset: int64(i)})
	}
	return msgs
}

// run de-identifies msgs with stage, writes the results to the de-identified
// topic of a fresh broker and to the activity table of a fresh database,
// and returns what the guard finds in both.
func run(t *testing.T, ctx context.Context, stage pipeline.Processor, msgs []pipeline.Message, ids *leakguard.Identifiers) []leakguard.Finding {
	t.Helper()
	b := brokertest.New(t, broker.WithDefaultPartitions(3))
	var outs []pipeline.Output
	var recs []*dmicv1.DeidentifiedRecord
	for _, m := range msgs {
		o, err := stage.Process(ctx, m)
		if err != nil {
			t.Fatalf("de-identify: %v", err)
		}
		for _, out := range o {
			r := &dmicv1.DeidentifiedRecord{}
			if err := proto.Unmarshal(out.Value, r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		outs = append(outs, o...)
	}
	// Written as deidentify, scanned as the operators' tool.
	w := kafkapipe.NewWriter(brokertest.As(t, b, topics.ServicePrincipal("deidentify")))
	defer w.Close()
	if err := (kafkapipe.Sink{W: w}).Write(ctx, outs); err != nil {
		t.Fatal(err)
	}
	conn, cfg := chstoretest.Database(t, "dmic_leakguard")
	if err := chstore.NewWriter(conn, cfg.Database).WriteActivity(ctx, recs); err != nil {
		t.Fatal(err)
	}
	found, counts, err := ids.ScanTopics(ctx, brokertest.As(t, b, topics.Operator), leakguard.AfterDeidentification)
	if err != nil {
		t.Fatal(err)
	}
	if counts[topics.Deidentified] != len(outs) {
		t.Fatalf("read %d de-identified messages back, wrote %d", counts[topics.Deidentified], len(outs))
	}
	inCH, err := ids.ScanClickHouse(ctx, conn, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	return append(found, inCH...)
}

// TestGuardCatchesABrokenDeidentifier runs the guard over the output of the
// real de-identify stage (it must find nothing) and over that of one that
// lets the postcode through (it must find it, on the topic and in ClickHouse).
func TestGuardCatchesABrokenDeidentifier(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ref, err := refdata.LoadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	items, err := synth.Generate(synth.Config{Seed: 11, Records: 120, BadShare: -1, NationalShare: -1, NationalOnlyShare: -1,
		RevisionShare: -1, DeleteShare: -1, Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes()})
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]leakguard.Patient, len(items))
	for i, it := range items {
		ps[i] = leakguard.Patient{NHSNumber: it.NHSNumber, Postcode: it.Postcode, BirthDate: it.BirthDate, LocalPatientID: it.LocalPatientID}
	}
	ids := leakguard.NewIdentifiers(ps, "2024-01-01")
	msgs := validated(t, items)
	if len(msgs) < 100 || ids.Len() < 100 {
		t.Fatalf("%d records, %d identifiers: too few to mean anything", len(msgs), ids.Len())
	}

	if found := run(t, ctx, realStage(t, ref), msgs, ids); len(found) != 0 {
		t.Errorf("the real de-identifier leaks: %v", found)
	}

	found := run(t, ctx, brokenStage{realStage(t, ref)}, msgs, ids)
	where := map[string]bool{}
	for _, f := range found {
		if f.Kind != "postcode" {
			t.Errorf("broken de-identifier: unexpected %s", f)
		}
		where[f.Where] = true
	}
	if !where["topic "+topics.Deidentified] {
		t.Errorf("the guard did not see the postcodes on %s: %v", topics.Deidentified, found)
	}
	var inCH bool
	for w := range where {
		if len(w) > len("ClickHouse table") && w[:len("ClickHouse table")] == "ClickHouse table" {
			inCH = true
		}
	}
	if !inCH {
		t.Errorf("the guard did not see the postcodes in ClickHouse: %v", found)
	}
}

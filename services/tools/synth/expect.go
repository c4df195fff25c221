package synth

import (
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Expectation summarises what a correct pipeline must end up with for a
// stream of items.
type Expectation struct {
	// Activities is the number of distinct (source, provider, dataset, cds
	// unique identifier) records live after revisions and deletes, good only:
	// ProviderLive + NationalLive.
	Activities int
	// Rejected is the number of provider records that are bad.
	Rejected     int
	ProviderLive int
	NationalLive int
	// ByRule counts bad records by the rule id each was made to break.
	ByRule map[string]int
	// Reconciliation of CDS datasets (local flows have no national copy and
	// are left out): live provider records with a live national counterpart
	// that agrees (Matched) or differs in one field (Mismatched), provider
	// records with none (LocalOnly), national records with none (NationalOnly).
	Matched, Mismatched, LocalOnly, NationalOnly int
	// Revisions and Deletes count the revision and delete records sent.
	Revisions, Deletes int
	// CAMSteps counts the live provider records of CAM scenarios by the
	// step that must decide them (Item.CAM); nil when there are none.
	CAMSteps map[string]int
}

type liveKey struct {
	source   dmicv1.Source
	provider string
	dataset  dmicv1.Dataset
	uid      string
}

// Expect replays items in order, the way a net-change store applies them
// (each revision and delete comes after the version it supersedes, in both
// stream order and applicable date/time), and counts the result.
func Expect(items []Item) Expectation {
	e := Expectation{ByRule: map[string]int{}}
	live := map[liveKey]string{} // -> Differs of the live version (national copies)
	for i := range items {
		it := &items[i]
		if len(it.Bad) > 0 {
			if it.Source == dmicv1.Source_SOURCE_PROVIDER {
				e.Rejected++
			}
			for _, r := range it.Bad {
				e.ByRule[r]++
			}
			continue
		}
		k := liveKey{it.Source, it.Provider, it.Dataset, it.RecordID}
		if it.CAM != nil {
			// Scenario records are never revised or deleted: each is live.
			if e.CAMSteps == nil {
				e.CAMSteps = map[string]int{}
			}
			e.CAMSteps[it.CAM.Step]++
		}
		switch {
		case it.Delete:
			e.Deletes++
			delete(live, k)
		default:
			if it.Revision {
				e.Revisions++
			}
			live[k] = it.Differs
		}
	}
	for k, differs := range live {
		switch k.source {
		case dmicv1.Source_SOURCE_PROVIDER:
			e.ProviderLive++
			if k.dataset == dmicv1.Dataset_DATASET_LOCAL_FLOW {
				continue
			}
			nk := k
			nk.source = dmicv1.Source_SOURCE_NATIONAL
			if _, ok := live[nk]; !ok {
				e.LocalOnly++
			}
		case dmicv1.Source_SOURCE_NATIONAL:
			e.NationalLive++
			pk := k
			pk.source = dmicv1.Source_SOURCE_PROVIDER
			switch _, ok := live[pk]; {
			case !ok:
				e.NationalOnly++
			case differs != "":
				e.Mismatched++
			default:
				e.Matched++
			}
		}
	}
	e.Activities = e.ProviderLive + e.NationalLive
	return e
}
